"""Durability for the embedded chain: an append-only, fsynced journal of what changed it.

Each record is a signed raw transaction (or an empty-block mine) with the timestamp of the
block it went into. Replaying the journal on a fresh chain with the same genesis rebuilds the
exact state: the same accounts, nonces, contract addresses and storage. A record is written
after its transaction is mined and before the caller is told, so every acknowledged
transaction survives a kill -9; a torn last record (killed mid-write) is ignored on replay.

Only one journal per chain folder is open at a time: opening one takes the folder's exclusive
lock (chainabs.chain.lock) before reading or writing anything, so a second process is refused
(ChainBusy) and never appends. Within one process a newer Journal of the same folder takes the
lock over and the older one refuses further appends (ChainError), so an abandoned chain object
cannot write behind its successor's back.
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

from chainabs.chain.lock import WriterLock, read_node, remove_node
from chainabs.datadir import write_atomic
from chainabs.errors import ChainError

_HEADER = struct.Struct(">cQI")  # kind, block timestamp, payload length
TX, MINE = b"T", b"M"


@dataclass(frozen=True)
class Record:
    kind: bytes
    timestamp: int
    payload: bytes


_OPEN: dict[str, Journal] = {}  # this process's open journal of each chain folder, by real path


class Journal:
    """The journal file and the genesis parameters it was written against."""

    lock: WriterLock

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "journal.bin"
        self.superseded = False
        key = os.path.realpath(self.directory)
        previous = _OPEN.get(key)
        if previous is not None and previous.lock.held:
            self.lock = previous.lock  # taken over: the older object may no longer append
            previous.superseded = True
            previous.close()
        else:
            self.lock = WriterLock(self.directory)
            self.lock.acquire()  # ChainBusy when another process has the chain open
            if read_node(self.directory) is not None:
                remove_node(self.directory)  # left by a holder that was killed: stale
        _OPEN[key] = self
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
        if self.superseded or not self.lock.held:
            raise ChainError(f"the chain in {self.directory} was closed or reopened by another object "
                             "of this process; this one may no longer write")
        fh = self._fh
        if fh is None:
            fh = self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open for the chain's life
        fh.write(_HEADER.pack(kind, timestamp, len(payload)) + payload)
        fh.flush()
        os.fsync(fh.fileno())

    def size(self) -> int:
        """The journal's length in bytes: a mark to `truncate` back to (a snapshot)."""
        if self._fh is not None:
            return self._fh.tell()
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, size: int) -> None:
        """Forget every record after `size` (a revert to a snapshot), durably."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(size)
                fh.flush()
                os.fsync(fh.fileno())

    def close(self) -> None:
        """Stop appending; unless superseded, drop the folder's lock."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if not self.superseded:
            self.lock.release()
            key = os.path.realpath(self.directory)
            if _OPEN.get(key) is self:
                del _OPEN[key]
