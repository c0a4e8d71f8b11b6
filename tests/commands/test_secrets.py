"""Secrets never reach output: the whole demo at DEBUG logging, scanned for the pool salt and
every signing key it used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_output_at_debug_holds_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "chainabs.cli", "--debug", "--data-dir", str(data), "demo",
                           "--no-serve", "--loans", "300", "--periods", "3"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "DEBUG " in done.stderr  # logging really was at DEBUG
    output = (done.stdout + done.stderr).lower()
    salts = [p.read_text().strip().lower() for p in data.glob("pools/*/salt")]
    assert salts and all(len(s) == 64 for s in salts)
    keys = [i.to_bytes(32, "big").hex() for i in range(1, 11)]  # the embedded chain's dev keys
    for secret in salts + keys:
        assert secret not in output
    for name in ("pool.json", "loans.json", "tree.json"):
        text = next(data.glob(f"pools/*/{name}")).read_text().lower()
        assert all(s not in text for s in salts)
