"""The compiled artifacts are committed, reproducible and never stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from chainabs import build, paths


def test_committed_artifacts_match_sources() -> None:
    assert build.check_artifacts() == []


def test_editing_a_contract_without_rebuilding_is_detected(tmp_path: Path) -> None:
    shutil.copytree(build.checkout() / "contracts", tmp_path / "contracts")
    target = tmp_path / "contracts" / "LoanPool.sol"
    target.write_text(target.read_text() + "\n// an edit\n")
    problems = build.check_artifacts(tmp_path)
    assert "LoanPool: contracts/LoanPool.sol or an import changed since the artifact was built" in problems
    assert not any(p.startswith(("LoanToken:", "SettlementToken:")) for p in problems)  # they do not import it


def test_a_new_contract_without_an_artifact_is_detected(tmp_path: Path) -> None:
    shutil.copytree(build.checkout() / "contracts", tmp_path / "contracts")
    (tmp_path / "contracts" / "Extra.sol").write_text("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract Extra {}\n")
    assert "Extra (contracts/Extra.sol) has no artifact" in build.check_artifacts(tmp_path)


def test_every_artifact_records_compiler_and_settings() -> None:
    for name in build.artifact_names():
        artifact = build.load_artifact(name)
        assert artifact["compiler"] == {"version": build.COMPILER_VERSION, "settings": build.SETTINGS}
        assert artifact["bytecode"].startswith("0x") and len(artifact["bytecode"]) > 2
        assert artifact["abi"], name


def test_rebuilding_gives_byte_identical_artifacts(tmp_path: Path) -> None:
    """Compiles everything (about 20 s with the WebAssembly compiler) into a scratch folder."""
    names, _ = build.build(out_dir=tmp_path)
    assert sorted(names) == build.artifact_names()
    for name in names:
        assert (tmp_path / f"{name}.json").read_bytes() == (paths.artifacts() / f"{name}.json").read_bytes(), name


def test_compiler_errors_are_reported_as_file_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    sources = {"contracts/Broken.sol": "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\n\ncontract Broken { uint x = ; }\n"}
    with pytest.raises(build.BuildError) as info:
        build.compile_all(sources)
    assert "contracts/Broken.sol:4: error:" in str(info.value)


def test_wasm_wrapper_speaks_solc_version_format() -> None:
    import subprocess

    wrapper = str(build.checkout() / build.WASM_WRAPPER)
    out = subprocess.run([wrapper, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[1].startswith(f"Version: {build.COMPILER_VERSION}+commit.")
    reply = subprocess.run([wrapper, "--standard-json"], input=json.dumps(build.standard_input(
        {"a.sol": "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\ncontract A {}\n"})),
        capture_output=True, text=True, check=True).stdout
    assert "A" in json.loads(reply)["contracts"]["a.sol"]
