"""Creating a pool from a loan tape, as the CLI (a file) and the API (an upload) both do.

The minting itself is chainabs.pool.create_pool (resumable); this adds what the doors share
around it: the tape refused before the chain is touched, an upload kept only for the length
of the call, and no trace left by a refused new pool.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from chainabs import pool as pools
from chainabs.context import Context
from chainabs.datadir import DataDir
from chainabs.dealfile import DealFile
from chainabs.errors import CellError, ChainabsError, Conflict, TapeError
from chainabs.service.periods import TapeSource
from chainabs.tape import apply_eligibility

TAPE_SUFFIXES = (".csv", ".jsonl", ".ndjson")  # the suffixes read_tape takes the format from


@dataclass(frozen=True)
class CreatedPool:
    slug: str
    tape_sha256: str
    report: pools.MintReport


def check_tape(tape: TapeSource, dealfile: DealFile) -> None:
    """Refuse a tape the pool would refuse (malformed, another currency, no eligible loan)
    without a chain: opening a new data dir's chain deploys the core contracts, which a refused
    command must not leave behind."""
    read = tape.read(decimals=dealfile.pool.decimals)
    if read.currency != dealfile.pool.currency:
        raise TapeError([CellError(read.loans[0].line, "currency", read.currency,
                                   f"the pool's currency is {dealfile.pool.currency}")])
    if not apply_eligibility(read.loans, dealfile.eligibility())[0]:
        raise TapeError([CellError(1, "", "", "no loan of the tape is eligible for the pool")])


def create_pool(ctx: Context, *, tape: TapeSource, dealfile: DealFile, new_only: bool = False,
                batch_size: int | None = None, progress: pools.Progress | None = None) -> CreatedPool:
    """Tokenise the tape's eligible loans into the pool the deal file names, or finish its
    interrupted minting when the same tape is given again. With `new_only` a pool already
    filled is refused (Conflict) instead of reported again. A pool refused before anything was
    written leaves no folder."""
    name = dealfile.pool.name
    folder = DataDir(ctx.data_dir).pool(name)
    existed = folder.folder.exists()
    record = folder.read_record()
    if new_only and record is not None and record.status == "filled":
        raise Conflict(f"pool {name!r} already exists")
    try:
        if tape.path is not None:
            report = _mint(ctx, tape.path, dealfile, batch_size, progress)
        else:
            with tempfile.TemporaryDirectory(prefix="chainabs-upload-") as tmp:
                suffix = Path(tape.name).suffix.lower()
                path = Path(tmp) / f"tape{suffix if suffix in TAPE_SUFFIXES else ''}"
                path.write_bytes(tape.data or b"")
                report = _mint(ctx, path, dealfile, batch_size, progress)
    except ChainabsError:
        if not existed and folder.folder.exists() and not any(folder.folder.iterdir()):
            folder.folder.rmdir()  # refused before anything was written: leave no trace
        raise
    written = folder.read_record()
    assert written is not None  # create_pool wrote it
    return CreatedPool(slug=folder.slug, tape_sha256=written.tape_sha256, report=report)


def _mint(ctx: Context, path: Path, dealfile: DealFile, batch_size: int | None,
          progress: pools.Progress | None) -> pools.MintReport:
    return pools.create_pool(ctx, tape_path=path, name=dealfile.pool.name, currency=dealfile.pool.currency,
                             decimals=dealfile.pool.decimals, eligibility=dealfile.eligibility(),
                             batch_size=batch_size, progress=progress)
