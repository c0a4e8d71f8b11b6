"""What route handlers depend on: the app's state, validated path values and pagination.

Every dependency here is a coroutine function and does no blocking work (the catalogs stat a
few files; nothing reads the chain): FastAPI runs a plain function in its thread pool, and a
thread hop per dependency is most of a request's cost when the machine is busy.

Routes declare these as `Annotated` aliases (`StateDep`, `DealsDep`, `PageDep`, `AddressPath`,
...), so a handler's signature says what it needs and FastAPI validates the request before the
handler runs; bad input becomes a 4xx with a sentence, never a 500.

The app's state is one object, `AppState` (settings, chain context, index, the data dir's
pools and deals); a test swaps a part of it with FastAPI's `app.dependency_overrides`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from eth_utils import is_checksum_address, to_checksum_address
from fastapi import Depends, Query, Request
from fastapi import Path as PathParam

from chainabs import figures
from chainabs.api.cache import ResponseCache
from chainabs.api.settings import Settings
from chainabs.context import Context
from chainabs.datadir import DataDir, DealRecord, read_json, slug
from chainabs.errors import ChainabsError, InvalidInput, NotFound
from chainabs.figures import DealInfo, TrancheInfo
from chainabs.indexer import Indexer
from chainabs.pool import PoolFiles
from chainabs.store import Store

MAX_LIMIT = 1000
MAX_OFFSET = 10**9
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


BadInput = InvalidInput  # the name route code has used for a malformed request value (422)


def shown(value: str, limit: int = 80) -> str:
    """A user-supplied value, quoted and cut short, for an error message."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


# -- pools of the data dir ---------------------------------------------------------------------

@dataclass
class PoolEntry:
    stamp: int
    files: PoolFiles
    memo: dict[Any, Any] = field(default_factory=dict)


class PoolCatalog:
    """The pools of a data dir by slug and by address, reloaded when a pool.json changes.

    Lookups only match folders that exist: a request value never becomes a file path.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = DataDir(data_dir)
        self._entries: dict[str, PoolEntry] = {}
        self._lock = threading.Lock()
        self._pools_dir = str(self.data_dir.pools_dir)
        self._record_name = self.data_dir.pool("x").record_path.name

    def _scan(self) -> dict[str, PoolEntry]:
        """Every pool folder with a record, stat-ed (on every request, so a change shows at
        once; os.scandir and os.stat, as DataDir.pools lists them, without pathlib's glob)."""
        with self._lock:
            found = {}
            for name, stamp in _stamps(self._pools_dir, lambda e: e.is_dir() and not e.name.startswith("."),
                                       self._record_name):
                entry = self._entries.get(name)
                if entry is None or entry.stamp != stamp:
                    try:
                        entry = PoolEntry(stamp, PoolFiles(self.data_dir.pools_dir / name))
                    except (ChainabsError, OSError, ValueError, TypeError):
                        continue
                found[name] = entry
            self._entries = found
            return found

    def stamps(self) -> tuple[tuple[str, int], ...]:
        """(slug, record stamp) of every pool: what a cached answer over pools is keyed on."""
        return tuple((name, entry.stamp) for name, entry in self._scan().items())

    def entries(self) -> list[PoolEntry]:
        """Every pool, by folder name."""
        return list(self._scan().values())

    def entry(self, key: str) -> PoolEntry:
        entries = self._scan()
        if _ADDRESS.fullmatch(key):
            for entry in entries.values():
                if (entry.files.record.address or "").lower() == key.lower():
                    return entry
            raise NotFound(f"no pool at address {key}")
        try:
            wanted = slug(key)
        except ChainabsError:
            wanted = None
        if wanted in entries:
            return entries[wanted]
        raise NotFound(f"no pool named {shown(key)}")


def _stamps(folder: str, keep: Callable[[os.DirEntry[str]], bool], inner: str | None = None) -> list[tuple[str, int]]:
    """(name, mtime_ns) of the entries of `folder` that `keep` accepts, by name; with `inner`,
    of the file of that name inside each (entries without it are left out)."""
    try:
        with os.scandir(folder) as listing:
            chosen = sorted(e.name for e in listing if keep(e))
    except OSError:
        return []
    out = []
    for name in chosen:
        try:
            out.append((name, os.stat(os.path.join(folder, name, inner) if inner else
                                      os.path.join(folder, name)).st_mtime_ns))
        except OSError:
            continue
    return out


def _is_deal_file(entry: os.DirEntry[str]) -> bool:
    """A deal record: `<slug>.json`, not the simulator's `-servicing.json`, not hidden."""
    name = entry.name
    return name.endswith(".json") and not name.startswith(".") and not name.endswith("-servicing.json")


# -- deals of the data dir ---------------------------------------------------------------------

class DealCatalog:
    """The deal records of a data dir, by pool slug and by tranche token, reloaded when one
    changes, and the figures the generic routes show of them (chainabs.figures): a pool's deal
    figures and a holder's tranche positions.

    Request values are only ever compared with the names found on disk, never made into paths.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data = DataDir(data_dir)
        self._deals: dict[str, DealInfo] = {}
        self._lock = threading.Lock()
        self._deals_dir = str(self.data.deals_dir)

    def _scan(self) -> dict[str, DealInfo]:
        """The deal files (as DataDir.deal_files lists them), stat-ed on every request."""
        with self._lock:
            found: dict[str, DealInfo] = {}
            for name, stamp in _stamps(self._deals_dir, _is_deal_file):
                stem = name.removesuffix(".json")
                try:
                    known = self._deals.get(stem)
                    if known is not None and known.stamp == stamp:
                        info = known
                    else:
                        path = self.data.deals_dir / name
                        info = DealInfo.load(self.data, DealRecord.from_json(stem, read_json(path)))
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # a half-written or foreign file is not a deal
                info.stamp = stamp
                found[stem] = info
            self._deals = found
            return found

    def stamps(self) -> tuple[tuple[str, int], ...]:
        """(slug, record stamp) of every deal: what a cached answer over all deals is keyed on."""
        return tuple((name, info.stamp) for name, info in self._scan().items())

    def for_pool(self, pool_slug: str) -> DealInfo | None:
        return self._scan().get(pool_slug)

    def tranche_tokens(self) -> dict[str, tuple[DealInfo, TrancheInfo]]:
        """{token address: (deal, tranche)} of every deal."""
        return {t.address: (d, t) for d in self._scan().values() for t in d.tranches}

    def pool_figures(self, *, store: Store, files: PoolFiles) -> dict[str, Any] | None:
        """The deal figures of the pool (chainabs.figures.deal_figures), None without a deal."""
        deal = self.for_pool(files.folder.name)
        return None if deal is None else figures.pool_deal_figures(deal, store, files)

    def holdings(self, *, store: Store, address: str, holdings: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The index's holdings of `address`, tranche tokens enriched (figures.enrich_holdings)."""
        return figures.enrich_holdings(store=store, tokens=self.tranche_tokens(), address=address,
                                       holdings=holdings)


# -- the app's state -----------------------------------------------------------------------------

@dataclass
class AppState:
    """Everything the routes reach, made once by create_app."""

    settings: Settings
    ctx: Context
    store: Store
    indexer: Indexer
    chain_lock: threading.RLock  # every chain call of the app holds it
    pools: PoolCatalog
    deals: DealCatalog
    responses: ResponseCache = field(default_factory=ResponseCache)


async def get_state(request: Request) -> AppState:
    return request.app.state.chainabs


StateDep = Annotated[AppState, Depends(get_state)]


async def get_deals(state: StateDep) -> DealCatalog:
    return state.deals


async def get_store(state: StateDep) -> Store:
    return state.store


async def get_context(state: StateDep) -> Context:
    return state.ctx


async def get_settings(state: StateDep) -> Settings:
    return state.settings


StoreDep = Annotated[Store, Depends(get_store)]
ContextDep = Annotated[Context, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
DealsDep = Annotated[DealCatalog, Depends(get_deals)]


# -- validated values ----------------------------------------------------------------------------

def parse_address(value: str, what: str = "address") -> str:
    """A 0x address, lower-cased; mixed case must carry a valid EIP-55 checksum."""
    if not _ADDRESS.fullmatch(value):
        raise BadInput(f"malformed {what} {shown(value)}: expected 0x followed by 40 hex digits")
    body = value[2:]
    if body != body.lower() and body != body.upper() and not is_checksum_address(value):
        raise BadInput(f"{what} {shown(value)} fails its EIP-55 checksum (mistyped?)")
    return value.lower()


@lru_cache(maxsize=65_536)
def checksum(address: str) -> str:
    return to_checksum_address(address)


async def address_path(
        address: Annotated[str, PathParam(description="an Ethereum address, 0x + 40 hex digits")]) -> str:
    return parse_address(address)


async def pool_entry(state: StateDep,
               pool: Annotated[str, PathParam(description="the pool's address or its name (slug)")]) -> PoolEntry:
    return state.pools.entry(pool)


AddressPath = Annotated[str, Depends(address_path)]
PoolEntryDep = Annotated[PoolEntry, Depends(pool_entry)]


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def pagination(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = 100,
               offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="items to skip")] = 0) -> Page:
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(pagination)]
