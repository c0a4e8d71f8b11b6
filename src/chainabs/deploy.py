"""Deploy chainabs contracts and record where they went in a deployment manifest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from chainabs.build import load_artifact
from chainabs.chain import Chain
from chainabs.datadir import write_atomic
from chainabs.errors import DeploymentError

MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """Where a deployment's contracts live, and what they were built from."""

    chain_id: int
    deployer: str
    deployment_block: int
    contracts: dict[str, str] = field(default_factory=dict)
    artifact_hashes: dict[str, str] = field(default_factory=dict)
    version: int = MANIFEST_VERSION
    roles: dict[str, str] = field(default_factory=dict)  # a deal's parties by role (deal file [roles])

    def add(self, name: str, address: str) -> None:
        self.contracts[name] = address
        artifact_name = name.split(":")[0]
        self.artifact_hashes[artifact_name] = artifact_code_hash(artifact_name)

    def write(self, path: Path, *, overwrite: bool = False) -> None:
        if path.exists() and not overwrite:
            raise DeploymentError(f"{path} exists; refusing to overwrite a deployment manifest")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise DeploymentError(f"no deployment manifest at {path}") from None
        except ValueError as exc:
            raise DeploymentError(f"{path} is not a valid manifest: {exc}") from None
        return cls(**data)


def artifact_code_hash(name: str) -> str:
    return "0x" + hashlib.sha256(load_artifact(name)["deployedBytecode"].encode()).hexdigest()


def deploy_core(chain: Chain, *, admin: str | None = None, decimals: int = 6) -> Manifest:
    """The chain-wide contracts: the loan token registry and a settlement token for dev chains."""
    admin = admin or chain.accounts[0]
    manifest = Manifest(chain_id=chain.chain_id, deployer=admin, deployment_block=chain.block_number() + 1)
    loan_token = chain.deploy("LoanToken", admin, sender=admin)
    manifest.add("LoanToken", loan_token.address)
    cash = chain.deploy("SettlementToken", "chainabs Dollar", "cUSD", decimals, admin, sender=admin)
    manifest.add("SettlementToken", cash.address)
    return manifest


def verify_code(chain: Chain, manifest: Manifest) -> list[str]:
    """Contracts whose code on chain differs from their artifact (immutables masked out)."""
    problems = []
    for name, address in manifest.contracts.items():
        artifact = load_artifact(name.split(":")[0])
        onchain = bytes(chain.w3.eth.get_code(to_checksum_address(address)))
        expected = bytes.fromhex(artifact["deployedBytecode"][2:])
        if len(onchain) != len(expected) or not _same_modulo_immutables(onchain, expected):
            problems.append(f"{name} at {address}: code on chain does not match the artifact")
    return problems


def _same_modulo_immutables(onchain: bytes, expected: bytes) -> bool:
    """Immutables are zero in the artifact and filled in at deployment: compare the rest."""
    return all(a == b or b == 0 for a, b in zip(onchain, expected, strict=True))


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    return {"chain_id": manifest.chain_id, "deployment_block": manifest.deployment_block, **manifest.contracts}
