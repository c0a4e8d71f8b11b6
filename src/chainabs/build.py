"""Compile contracts/ with the pinned solc through py-solc-x and write committed artifacts.

Every source the compiler sees (ours and OpenZeppelin's from node_modules) is read here and
passed by content, so a build depends on nothing but these files and the pinned compiler. An
artifact records the hash of the sources its contract was compiled from; `check_artifacts`
recomputes those hashes without a compiler, so a test can tell when an artifact is stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chainabs import paths
from chainabs.errors import BuildError

log = logging.getLogger(__name__)

COMPILER_VERSION = "0.8.28"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "viaIR": True,
    "metadata": {"bytecodeHash": "none"},
}
OUTPUT_SELECTION = ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "storageLayout"]

WASM_WRAPPER = Path("tools", "solc-wasm.js")  # in the checkout

_IMPORT_RE = re.compile(r'^\s*import\s+(?:[^"\']*from\s+)?["\']([^"\']+)["\']', re.MULTILINE)


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"


# -- where: the checkout and node_modules (chainabs.paths) ------------------------------------------

def checkout() -> Path:
    """The source checkout that compiling reads (contracts/, tools/)."""
    root = paths.repo()
    if root is None:
        raise BuildError(f"compiling needs a checkout of the chainabs repository (contracts/): run it in one, "
                         f"or set {paths.REPO_ENV} to one")
    return root


def node_modules() -> Path:
    """The npm packages compiling reads (OpenZeppelin's sources, the solc WebAssembly compiler)."""
    found = paths.node_modules()
    if found is None:
        raise BuildError(f"no node_modules: run `make setup` (npm ci) in a checkout, or set "
                         f"{paths.NODE_MODULES_ENV} to a node_modules folder")
    return found


# -- sources -----------------------------------------------------------------------------------

def _resolve(source_unit: str, importing_unit: str | None) -> str:
    """The source unit name of an import, as solc's virtual file system would name it."""
    if source_unit.startswith("."):
        base = os.path.dirname(importing_unit or "")
        return os.path.normpath(os.path.join(base, source_unit)).replace(os.sep, "/")
    return source_unit


def _read_unit(unit: str, root_dir: Path) -> str:
    for root in (root_dir, node_modules()):
        candidate = root / unit
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    raise BuildError(f"{unit}: import not found (looked in the repository and node_modules; run `make setup`)")


def collect_sources(root_dir: Path | None = None) -> dict[str, str]:
    """Every source unit reachable from root_dir/contracts (default: the checkout's), keyed by
    unit name, as text."""
    root_dir = root_dir if root_dir is not None else checkout()
    contracts_dir = root_dir / "contracts"
    roots = sorted(p.relative_to(root_dir).as_posix() for p in contracts_dir.rglob("*.sol"))
    if not roots:
        raise BuildError(f"no Solidity sources under {contracts_dir}")
    sources: dict[str, str] = {}
    pending = list(roots)
    while pending:
        unit = pending.pop()
        if unit in sources:
            continue
        text = _read_unit(unit, root_dir)
        sources[unit] = text
        pending.extend(_resolve(imp, unit) for imp in _IMPORT_RE.findall(text))
    return dict(sorted(sources.items()))


def _closure(unit: str, sources: dict[str, str]) -> list[str]:
    seen: set[str] = set()
    stack = [unit]
    while stack:
        u = stack.pop()
        if u in seen:
            continue
        seen.add(u)
        stack.extend(_resolve(imp, u) for imp in _IMPORT_RE.findall(sources[u]))
    return sorted(seen)


def source_hash(unit: str, sources: dict[str, str]) -> str:
    """sha256 over the unit and everything it imports, plus compiler version and settings."""
    digest = hashlib.sha256()
    digest.update(COMPILER_VERSION.encode())
    digest.update(json.dumps(SETTINGS, sort_keys=True).encode())
    for name in _closure(unit, sources):
        digest.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return "0x" + digest.hexdigest()


# -- compiler ----------------------------------------------------------------------------------

def find_compiler() -> Path:
    """A native solc of the pinned version if one is installed, else the WebAssembly wrapper."""
    import solcx

    candidates: list[Path] = []
    on_path = shutil.which("solc")
    if on_path:
        candidates.append(Path(on_path))
    try:
        candidates.append(Path(solcx.get_executable(COMPILER_VERSION)))  # type: ignore[attr-defined]
    except Exception:
        pass
    for binary in candidates:
        try:
            if str(solcx.wrapper.get_solc_version(binary)) == COMPILER_VERSION:
                return binary
        except Exception:
            continue
    if not (node_modules() / "solc").is_dir():
        raise BuildError(f"no solc {COMPILER_VERSION} found and node_modules/solc is missing: run `make setup`")
    return checkout() / WASM_WRAPPER


def standard_input(sources: dict[str, str]) -> dict[str, Any]:
    return {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": {**SETTINGS, "outputSelection": {"*": {"*": OUTPUT_SELECTION}}},
    }


def _diagnostics(output: dict[str, Any]) -> list[Diagnostic]:
    found = []
    for err in output.get("errors", []):
        loc = err.get("sourceLocation") or {}
        where = loc.get("file", "<input>")
        text = output.get("_sources", {}).get(where)
        if text is not None and loc.get("start", -1) >= 0:
            where = f"{where}:{text.count(chr(10), 0, loc['start']) + 1}"
        found.append(Diagnostic(err.get("severity", "error"), where, err.get("message", "").strip()))
    return found


def compile_all(sources: dict[str, str] | None = None) -> tuple[dict[str, Any], list[Diagnostic]]:
    import solcx
    from solcx.exceptions import SolcError

    sources = sources if sources is not None else collect_sources()
    binary = find_compiler()
    log.info("compiling %d source units with %s", len(sources), binary)
    try:
        output = solcx.compile_standard(standard_input(sources), solc_binary=binary, allow_empty=True)
    except SolcError as exc:
        try:
            output = json.loads(exc.stdout_data or "")
        except ValueError:
            raise BuildError(f"solc failed: {exc}") from exc
    output["_sources"] = sources
    diagnostics = _diagnostics(output)
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise BuildError("compilation failed:\n" + "\n".join(str(d) for d in errors))
    return output, diagnostics


# -- artifacts ---------------------------------------------------------------------------------

def _without_ast_ids(layout: dict[str, Any]) -> dict[str, Any]:
    """AST ids number every node of the whole compilation, so they change when an unrelated
    contract is added; leave them out so an artifact depends only on its own sources."""
    storage = [{k: v for k, v in entry.items() if k != "astId"} for entry in layout.get("storage", [])]
    return {**layout, "storage": storage}


def _artifact_bytes(artifact: dict[str, Any]) -> bytes:
    return (json.dumps(artifact, indent=1, sort_keys=True) + "\n").encode()


def build(out_dir: Path | None = None) -> tuple[list[str], list[Diagnostic]]:
    """Compile everything and write one artifact per deployable contract in contracts/ into
    `out_dir` (default: the package's artifacts, chainabs.paths.artifacts()).

    Returns the names written and the compiler's warnings. Artifacts for contracts that no
    longer exist are removed.
    """
    out_dir = out_dir if out_dir is not None else paths.artifacts()
    sources = collect_sources()
    output, diagnostics = compile_all(sources)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for unit, contracts in sorted(output.get("contracts", {}).items()):
        if not unit.startswith("contracts/"):
            continue
        for name, data in sorted(contracts.items()):
            bytecode = data["evm"]["bytecode"]["object"]
            if not bytecode:
                continue  # interfaces and abstract contracts
            artifact = {
                "contractName": name,
                "sourceUnit": unit,
                "sourceHash": source_hash(unit, sources),
                "compiler": {"version": COMPILER_VERSION, "settings": SETTINGS},
                "abi": data["abi"],
                "bytecode": "0x" + bytecode,
                "deployedBytecode": "0x" + data["evm"]["deployedBytecode"]["object"],
                "storageLayout": _without_ast_ids(data.get("storageLayout", {})),
            }
            if name in written:
                raise BuildError(f"two contracts are named {name}; artifact names must be unique")
            path = out_dir / f"{name}.json"
            content = _artifact_bytes(artifact)
            if not path.exists() or path.read_bytes() != content:
                path.write_bytes(content)
            written.append(name)
    for stale in out_dir.glob("*.json"):
        if stale.stem not in written:
            stale.unlink()
    return written, [d for d in diagnostics if d.severity != "error"]


def load_artifact(name: str) -> dict[str, Any]:
    path = paths.artifacts() / f"{name}.json"
    if not path.is_file():
        raise BuildError(f"no artifact for contract {name!r}: run `chainabs build`")
    return json.loads(path.read_text())


def artifact_names() -> list[str]:
    return sorted(p.stem for p in paths.artifacts().glob("*.json"))


def check_artifacts(root_dir: Path | None = None) -> list[str]:
    """Problems that make the committed artifacts disagree with root_dir/contracts (default: the
    checkout's); empty when fresh."""
    sources = collect_sources(root_dir)
    problems = []
    defined = {}
    for unit in sources:
        if unit.startswith("contracts/"):
            for name in re.findall(r"^\s*contract\s+(\w+)", sources[unit], re.MULTILINE):
                defined[name] = unit
    present = set(artifact_names())
    for name, unit in sorted(defined.items()):
        if name not in present:
            problems.append(f"{name} ({unit}) has no artifact")
    for name in sorted(present):
        artifact = load_artifact(name)
        unit = artifact["sourceUnit"]
        if unit not in sources:
            problems.append(f"{name}: its source {unit} is gone")
        elif artifact["sourceHash"] != source_hash(unit, sources):
            problems.append(f"{name}: {unit} or an import changed since the artifact was built")
    return problems
