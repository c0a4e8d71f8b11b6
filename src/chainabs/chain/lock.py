"""One writer per data dir: the embedded chain's exclusive lock, and the URL of the node that holds it.

    <data dir>/chain/lock        flock(LOCK_EX) by the one process that has the chain open
    <data dir>/chain/node.json   {"url", "pid", "chain_id"} while that process serves JSON-RPC

The lock is an OS advisory lock on an open file description: the kernel drops it when the
process ends however it ends (kill -9 included), so a crash never leaves a data dir locked.
`node.json` is written atomically after the endpoint listens and removed on a clean exit; one
left by a killed service is stale, which is known by its lock being free, and is then ignored
and removed by the next holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from chainabs.datadir import write_atomic
from chainabs.errors import Conflict

LOCK_FILE = "lock"
NODE_FILE = "node.json"


class ChainBusy(Conflict):
    """Another process holds the data dir's embedded chain."""


class WriterLock:
    """The exclusive lock on a chain folder, held from `acquire` to `release` (or the process's end)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or raise ChainBusy; never waits."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ChainBusy(f"the embedded chain in {self.path.parent} is open in another process") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the description drops the flock
            self._fd = None


def is_locked(directory: Path) -> bool:
    """Whether another process holds the chain folder's lock (a probe: taken and dropped at once)."""
    if not (Path(directory) / LOCK_FILE).exists():
        return False
    probe = WriterLock(directory)
    try:
        probe.acquire()
    except ChainBusy:
        return True
    probe.release()
    return False


@dataclass(frozen=True)
class NodeRecord:
    """node.json: where the process holding the chain answers JSON-RPC."""

    url: str
    pid: int
    chain_id: int


def node_path(directory: Path) -> Path:
    return Path(directory) / NODE_FILE


def write_node(directory: Path, record: NodeRecord) -> None:
    write_atomic(node_path(directory), json.dumps({"url": record.url, "pid": record.pid,
                                                   "chain_id": record.chain_id}) + "\n")


def remove_node(directory: Path, url: str | None = None) -> None:
    """Remove node.json (only if it still names `url`, when given: a later holder's is kept)."""
    path = node_path(directory)
    if url is not None:
        found = read_node(directory)
        if found is None or found.url != url:
            return
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_node(directory: Path) -> NodeRecord | None:
    """The node.json record, None when there is none or it cannot be read (it is only a hint)."""
    try:
        data = json.loads(node_path(directory).read_text())
        return NodeRecord(url=str(data["url"]), pid=int(data["pid"]), chain_id=int(data["chain_id"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_node(directory: Path) -> NodeRecord | None:
    """The node serving this chain folder: its record when the lock is held, else None (a
    record without a held lock is stale)."""
    record = read_node(directory)
    if record is None or not is_locked(directory):
        return None
    return record
