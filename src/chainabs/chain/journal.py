"""Durability for the embedded chain: an append-only, fsynced journal of what changed it.

Each record is a signed raw transaction (or an empty-block mine) with the timestamp of the
block it went into. Replaying the journal on a fresh chain with the same genesis rebuilds the
exact state: the same accounts, nonces, contract addresses and storage. A record is written
after its transaction is mined and before the caller is told, so every acknowledged
transaction survives a kill -9; a torn last record (killed mid-write) is ignored on replay.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from chainabs.datadir import write_atomic

_HEADER = struct.Struct(">cQI")  # kind, block timestamp, payload length
TX, MINE = b"T", b"M"


@dataclass(frozen=True)
class Record:
    kind: bytes
    timestamp: int
    payload: bytes


class Journal:
    """The journal file and the genesis parameters it was written against."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "journal.bin"
        genesis = self.directory / "genesis.json"
        if genesis.exists():
            self.genesis_timestamp = int(json.loads(genesis.read_text())["timestamp"])
        else:
            self.genesis_timestamp = int(time.time())
            write_atomic(genesis, json.dumps({"timestamp": self.genesis_timestamp}))
        self._fh: BinaryIO | None = None

    def records(self) -> Iterator[Record]:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        offset = 0
        while offset + _HEADER.size <= len(data):
            kind, timestamp, length = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data) or kind not in (TX, MINE):
                break  # a torn last record: it was never acknowledged
            yield Record(kind, timestamp, data[offset + _HEADER.size:end])
            offset = end
        if offset != len(data):
            with open(self.path, "r+b") as fh:  # drop the torn tail so appends stay aligned
                fh.truncate(offset)

    def append(self, kind: bytes, timestamp: int, payload: bytes = b"") -> None:
        fh = self._fh
        if fh is None:
            fh = self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the chain's life
        fh.write(_HEADER.pack(kind, timestamp, len(payload)) + payload)
        fh.flush()
        os.fsync(fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
