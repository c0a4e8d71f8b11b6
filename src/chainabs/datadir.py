"""The data dir: every file chainabs keeps off chain, each with one typed home.

    <root>/
      chain/                       the embedded chain's journal (chain package)
      deployment-<chain id>.json   the core deployment manifest (deploy.Manifest)
      index.sqlite                 the event index (store.Store)
      demo-tape.csv                the demo's generated tape
      pools/<slug>/
        salt                       the pool's secret salt, mode 0600, never printed
        pool.json                  PoolRecord: address, root, progress
        loans.json                 [CommittedLoan]: each pooled loan's 15 committed values
        tree.json                  the Merkle tree (merkle.MerkleTree.to_json)
        periods/<n>.json           PeriodTape: period n's loan-level statuses and balances
        purchases/<n>.json         [CommittedLoan]: the loans bought with period n's report
      deals/<slug>.json            DealRecord: the deal's contracts, roles and terms
      deals/<slug>.json.partial    a deal deployed but not finished (`deal create` resumes it)
      deals/<slug>-servicing.json  the simulator's state (servicing.Simulator.state_dict)

No other module spells one of these paths; request values and names from users become paths
only through `slug`, which keeps them a single safe path component. Every write is atomic
(temporary file, fsync, rename), so a kill at any point leaves either the old file or the new.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

from chainabs import merkle
from chainabs.errors import Conflict, InvalidInput, NotFound
from chainabs.waterfall import DealParams, TrancheSpec

DATA_DIR_ENV = "CHAINABS_DATA_DIR"
DEFAULT_DATA_DIR = ".chainabs"
MAX_POOL_NAME = 128  # as the deal file allows
INDEX_FILE = "index.sqlite"


# -- files ---------------------------------------------------------------------------------------

def write_atomic(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Write `text` to `path` atomically: a temporary file of this process's own in the same
    folder, fsync, rename over `path`, fsync the folder. A kill at any point leaves the old
    file or the new one, never a torn or empty one; two writers never share a temporary file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: Any) -> None:
    """Write `data` as compact JSON atomically (`write_atomic`)."""
    write_atomic(path, json.dumps(data, separators=(",", ":")))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def shown_name(name: str) -> str:
    """A pool name quoted for a message, cut to 60 characters."""
    return repr(name) if len(name) <= 60 else repr(name[:60])[:-1] + "…'"


_SEPARATOR_OR_CONTROL = re.compile(r"[/\\\x00-\x1f\x7f]")
_SERVICING = "-servicing"  # deals/<slug>-servicing.json is the simulator's state of pool <slug>


def pool_name_problem(name: str) -> str | None:
    """Why `name` cannot name a pool (a phrase), or None. A name becomes one folder, `slug(name)`:
    it may not hold a path separator or a control character (NUL among them), be only dots
    (`.`, `..`), be longer than MAX_POOL_NAME or clean up to nothing, nor make a slug ending in
    '-servicing', whose deal record would be another pool's simulator state."""
    if len(name) > MAX_POOL_NAME:
        return f"is {len(name)} characters long, more than {MAX_POOL_NAME}"
    bad = _SEPARATOR_OR_CONTROL.search(name)
    if bad is not None:
        what = "a path separator" if bad.group() in "/\\" else "a control character"
        return f"contains {what} ({bad.group()!r}); a pool name becomes one folder name"
    if name.strip() and name.strip().strip(".") == "":
        return "is only dots, which name the folder itself or its parent, not a new folder"
    cleaned = _cleaned(name)
    if not cleaned:
        return "has no usable characters"
    if cleaned.endswith(_SERVICING):
        return f"ends in {_SERVICING!r} (as {cleaned!r}), which the data dir keeps for a deal's servicing state"
    return None


def slug(name: str) -> str:
    """The pool's folder name: its name in lower case, runs of other characters than letters,
    digits, '.', '_' and '-' as '-'. A name that is not a safe single path component is refused
    (InvalidInput, `pool_name_problem` says why): every path a pool name becomes passes here."""
    problem = pool_name_problem(name)
    if problem is not None:
        raise InvalidInput(f"pool name {shown_name(name)} {problem}")
    return _cleaned(name)


def _cleaned(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-").lower()
    return "" if cleaned.strip(".") == "" else cleaned


# -- records -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolRecord:
    """pool.json: what a pool folder knows about its pool on chain."""

    name: str
    currency: str
    decimals: int
    chain_id: int
    tape_sha256: str
    root: str
    loan_count: int
    outstanding_units: int
    principal_units: int
    address: str | None = None
    deployment_block: int | None = None
    status: str = "planned"        # planned -> deployed -> committed -> filled
    extra: dict[str, Any] = field(default_factory=dict)


class CommittedLoan(NamedTuple):
    """One pooled loan's 15 committed values in merkle.LEAF_TYPES order, as loans.json keeps
    them: the borrower hash as 0x-hex, never the borrower reference."""

    loan_id: str
    borrower_hash: str
    product: int
    currency: str
    principal_units: int
    outstanding_units: int
    rate_bps: int
    origination_day: int
    maturity_day: int
    term_months: int
    repayment_type: int
    status: int
    funded_share_bps: int
    credit_score: int
    region: str

    @classmethod
    def of(cls, loan: merkle.LoanLike, salt: bytes) -> CommittedLoan:
        values = list(merkle.loan_values(loan, salt))
        values[1] = "0x" + values[1].hex()
        return cls._make(values)

    def hash_values(self) -> tuple[Any, ...]:
        """The values as the loan hash encodes them (the borrower hash as 32 bytes)."""
        return (self.loan_id, bytes.fromhex(self.borrower_hash[2:]), *self[2:])

    def loan_hash(self) -> bytes:
        return merkle.hash_values(self.hash_values())

    def leaf(self) -> bytes:
        return merkle.leaf_from_loan_hash(self.loan_hash())

    def in_period(self, *, status: int, outstanding_units: int) -> CommittedLoan:
        """The loan as a period's loan-level tape re-commits it: new status and balance."""
        return self._replace(status=status, outstanding_units=outstanding_units)


@dataclass(frozen=True)
class PeriodTape:
    """periods/<n>.json: a period's loan-level tape, each loan's status and balance in the
    pool's loan order, and the Merkle root they give (the period's `loan_root` on chain)."""

    period: int
    root: str
    statuses: list[int]
    outstanding: list[int]

    def as_json(self) -> dict[str, Any]:
        return {"root": self.root, "statuses": self.statuses, "outstanding": self.outstanding}


def period_root(loans: Sequence[CommittedLoan], statuses: Sequence[int], outstanding: Sequence[int]) -> bytes:
    """Merkle root of a period's loan-level tape: each loan's leaf with its new status and balance."""
    leaves = [loan.in_period(status=s, outstanding_units=o).leaf()
              for loan, s, o in zip(loans, statuses, outstanding, strict=True)]
    return merkle.MerkleTree.from_leaves(leaves).root


@dataclass(frozen=True)
class DealRecord:
    """deals/<slug>.json: a deal's contracts (by artifact name, tranche tokens as
    `TrancheToken:<symbol>`), its roles and its published terms. The indexer, the API and the
    audit read the same file."""

    slug: str
    name: str
    pool: str
    contracts: Mapping[str, str]
    roles: Mapping[str, str]
    params: DealParams
    cutoff_day: int | None = None
    deployment_block: int | None = None

    @property
    def deal(self) -> str:
        return self.contracts["Deal"]

    def tranche_address(self, symbol: str) -> str | None:
        return self.contracts.get(f"TrancheToken:{symbol}")

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "pool": self.pool, "cutoff_day": self.cutoff_day,
                               "contracts": dict(self.contracts), "roles": dict(self.roles),
                               "params": _params_json(self.params)}
        if self.deployment_block is not None:
            out["deployment_block"] = self.deployment_block
        return out

    @classmethod
    def from_json(cls, slug_: str, info: Any) -> DealRecord:
        """Raises ValueError (KeyError, TypeError) on a file that is not a deal record: one
        without its contracts or its published terms. Keys a later version adds are ignored."""
        if not isinstance(info, dict) or not isinstance(info.get("contracts"), dict):
            raise ValueError("not a deal record: no contracts mapping")
        if not isinstance(info.get("params"), dict):
            raise ValueError("not a deal record: no published terms (params)")
        params = info["params"]
        cutoff = info.get("cutoff_day")
        block = info.get("deployment_block")
        return cls(slug=slug_, name=str(info.get("name", slug_)), pool=str(info.get("pool", "")),
                   contracts={str(k): str(v) for k, v in info["contracts"].items()},
                   roles={str(k): str(v) for k, v in (info.get("roles") or {}).items()},
                   params=params_from_json(params),
                   cutoff_day=cutoff if isinstance(cutoff, int) else None,
                   deployment_block=block if isinstance(block, int) else None)


def _params_json(params: DealParams) -> dict[str, Any]:
    return {"tranches": [asdict(t) for t in params.tranches], "servicer_fee_bps": params.servicer_fee_bps,
            "reserve_target_bps": params.reserve_target_bps, "initial_reserve": params.initial_reserve,
            "default_trigger_bps": params.default_trigger_bps}


@dataclass(frozen=True)
class DealContracts:
    """What the indexer reads of a deal record: its contracts, pool and first block. Any file
    of the deals folder with a contracts mapping qualifies (an operator may list contracts to
    index without terms), so this reading is lenient where DealRecord is not."""

    slug: str
    pool: str
    contracts: Mapping[str, str]
    deployment_block: int | None

    @classmethod
    def from_json(cls, slug_: str, info: Any) -> DealContracts:
        """Raises ValueError on a file without a contracts mapping."""
        if not isinstance(info, dict) or not isinstance(info.get("contracts"), dict):
            raise ValueError("not a deal record: no contracts mapping")
        block = info.get("deployment_block")
        pool = info.get("pool")
        return cls(slug=slug_, pool=pool if isinstance(pool, str) else "",
                   contracts={str(k): str(v) for k, v in info["contracts"].items()},
                   deployment_block=block if isinstance(block, int) else None)


_TRANCHE_KEYS = tuple(f.name for f in fields(TrancheSpec))


def params_from_json(p: Mapping[str, Any]) -> DealParams:
    return DealParams(tranches=tuple(TrancheSpec(**{k: t[k] for k in _TRANCHE_KEYS}) for t in p["tranches"]),
                      servicer_fee_bps=p["servicer_fee_bps"], reserve_target_bps=p["reserve_target_bps"],
                      initial_reserve=p["initial_reserve"], default_trigger_bps=p["default_trigger_bps"])


@dataclass(frozen=True)
class PartialDeal:
    """deals/<slug>.json.partial: a deal's contracts deployed before `deal create` finished."""

    contracts: Mapping[str, str]
    roles: Mapping[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"contracts": dict(self.contracts), "roles": dict(self.roles)}


# -- a pool's folder -----------------------------------------------------------------------------

class PoolDir:
    """One pool's folder: its paths and its records, read and written atomically."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def slug(self) -> str:
        return self.folder.name

    @property
    def data_dir(self) -> DataDir:
        """The data dir this pool folder belongs to (`<root>/pools/<slug>`)."""
        return DataDir(self.folder.parent.parent)

    @property
    def record_path(self) -> Path:
        return self.folder / "pool.json"

    @property
    def loans_path(self) -> Path:
        return self.folder / "loans.json"

    @property
    def tree_path(self) -> Path:
        return self.folder / "tree.json"

    @property
    def salt_path(self) -> Path:
        return self.folder / "salt"

    @property
    def periods_dir(self) -> Path:
        return self.folder / "periods"

    def period_path(self, period: int) -> Path:
        return self.periods_dir / f"{int(period)}.json"

    def exists(self) -> bool:
        return self.record_path.exists()

    def create(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def read_record(self) -> PoolRecord | None:
        if not self.record_path.exists():
            return None
        return PoolRecord(**read_json(self.record_path))

    def write_record(self, record: PoolRecord) -> None:
        write_json(self.record_path, asdict(record))

    def read_loans(self) -> list[CommittedLoan]:
        make = CommittedLoan._make
        return [make(row) for row in read_json(self.loans_path)]

    def write_loans(self, loans: Sequence[CommittedLoan]) -> None:
        write_json(self.loans_path, loans)

    def read_tree(self) -> merkle.MerkleTree:
        return merkle.MerkleTree.from_json(read_json(self.tree_path))

    def write_tree(self, tree: merkle.MerkleTree) -> None:
        write_json(self.tree_path, tree.to_json())

    def salt(self) -> bytes:
        """The pool's secret salt: created once with a secure random source, mode 0600.

        It is written to a temporary file, fsynced and linked into place, so a kill between
        creating and filling it never leaves an empty salt that a rerun would refuse."""
        path = self.salt_path
        existing = self.read_salt()
        if existing is not None:
            return existing
        salt = merkle.new_pool_salt()
        fd, tmp = tempfile.mkstemp(prefix=".salt.", suffix=".tmp", dir=self.folder)  # mode 0600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(salt.hex())
                fh.flush()
                os.fsync(fh.fileno())
            os.link(tmp, path)  # fails if another process made the salt first: theirs is kept
        except FileExistsError:
            return self.salt()
        finally:
            os.unlink(tmp)
        fsync_dir(self.folder)
        return salt

    def read_salt(self) -> bytes | None:
        """The pool's salt, or None when it has none yet (never creates one)."""
        path = self.salt_path
        if not path.exists():
            return None
        salt = bytes.fromhex(path.read_text().strip())
        if len(salt) != 32:
            raise Conflict(f"{path} does not hold a 32-byte salt")
        return salt

    def read_period(self, period: int) -> PeriodTape | None:
        path = self.period_path(period)
        if not path.exists():
            return None
        data = read_json(path)
        return PeriodTape(period=int(period), root=str(data["root"]), statuses=list(data["statuses"]),
                          outstanding=list(data["outstanding"]))

    def write_period(self, tape: PeriodTape) -> None:
        self.periods_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.period_path(tape.period), tape.as_json())

    def period_numbers(self) -> list[int]:
        """The periods whose tapes are kept, in order; files not named `<n>.json` are -1."""
        if not self.periods_dir.is_dir():
            return []
        return sorted(int(p.stem) if p.stem.isdigit() else -1 for p in self.periods_dir.glob("*.json"))

    @property
    def purchases_dir(self) -> Path:
        return self.folder / "purchases"

    def purchase_path(self, period: int) -> Path:
        return self.purchases_dir / f"{int(period)}.json"

    def read_purchase(self, period: int) -> list[CommittedLoan] | None:
        """The loans bought with period `period`'s report, in the order they were committed."""
        path = self.purchase_path(period)
        if not path.exists():
            return None
        make = CommittedLoan._make
        return [make(row) for row in read_json(path)]

    def write_purchase(self, period: int, loans: Sequence[CommittedLoan]) -> None:
        self.purchases_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.purchase_path(period), loans)

    def purchase_numbers(self) -> list[int]:
        """The periods whose purchases are kept, in order (files not named `<n>.json` skipped)."""
        if not self.purchases_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.purchases_dir.glob("*.json") if p.stem.isdigit())

    def period_files(self) -> list[Path]:
        """Every `*.json` in the periods folder, in period order (misnamed ones first)."""
        if not self.periods_dir.is_dir():
            return []
        return sorted(self.periods_dir.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else -1)


# -- the data dir --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DataDir:
    """A data dir's root and every path under it."""

    root: Path

    @classmethod
    def resolve(cls, data_dir: str | os.PathLike[str] | None = None, *, create: bool = True) -> DataDir:
        """The given data dir, else $CHAINABS_DATA_DIR, else `.chainabs`; created if missing."""
        path = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    # the chain, its deployment and the index
    @property
    def chain_dir(self) -> Path:
        return self.root / "chain"

    def deployment_path(self, chain_id: int) -> Path:
        return self.root / f"deployment-{int(chain_id)}.json"

    def has_deployment(self) -> bool:
        """Whether a core deployment manifest of any chain is here."""
        return any(self.root.glob("deployment-*.json"))

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_FILE

    @property
    def demo_tape(self) -> Path:
        return self.root / "demo-tape.csv"

    # pools
    @property
    def pools_dir(self) -> Path:
        return self.root / "pools"

    def pool(self, name: str) -> PoolDir:
        """The folder of the pool with this name (or slug); it need not exist yet."""
        return PoolDir(self.pools_dir / slug(name))

    def pools(self) -> list[PoolDir]:
        """Every pool folder with a pool.json, by slug."""
        if not self.pools_dir.is_dir():
            return []
        return [PoolDir(p.parent) for p in sorted(self.pools_dir.glob("*/pool.json"))]

    def find_pool(self, name: str | None = None) -> PoolDir:
        """The named pool, or the only pool of the data dir."""
        if name is not None:
            folder = self.pool(name)
            if not folder.exists():
                raise NotFound(f"no pool named {shown_name(name)} in {self.root}")
            return folder
        found = self.pools()
        if not found:
            raise NotFound(f"no pool in {self.root}: run `chainabs pool create` first")
        if len(found) > 1:
            raise InvalidInput(f"{len(found)} pools in {self.root}: name one with --pool")
        return found[0]

    # deals
    @property
    def deals_dir(self) -> Path:
        return self.root / "deals"

    def deal_path(self, pool_slug: str) -> Path:
        return self.deals_dir / f"{pool_slug}.json"

    def partial_deal_path(self, pool_slug: str) -> Path:
        return self.deals_dir / f"{pool_slug}.json.partial"

    def servicing_path(self, pool_slug: str) -> Path:
        return self.deals_dir / f"{pool_slug}-servicing.json"

    def has_deal(self, pool_slug: str) -> bool:
        return self.deal_path(pool_slug).exists()

    def read_deal(self, pool_slug: str) -> DealRecord | None:
        """The pool's deal record, or None when it has no deal; InvalidInput naming the file
        when it is not a readable deal record."""
        path = self.deal_path(pool_slug)
        if not path.exists():
            return None
        try:
            return DealRecord.from_json(pool_slug, read_json(path))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path} is not a readable deal record ({exc.__class__.__name__}: {exc})") from None

    def write_deal(self, record: DealRecord) -> None:
        self.deals_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.deal_path(record.slug), record.as_json())

    def deal_files(self) -> Iterator[Path]:
        """Every deal record file (not the simulator's state, not a partial deal)."""
        if not self.deals_dir.is_dir():
            return
        for path in sorted(self.deals_dir.glob("*.json")):
            if not path.stem.endswith("-servicing"):
                yield path

    def deals(self) -> list[DealRecord]:
        """Every readable deal record; a half-written or foreign file is skipped."""
        out = []
        for path in self.deal_files():
            try:
                out.append(DealRecord.from_json(path.stem, read_json(path)))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def read_partial_deal(self, pool_slug: str) -> PartialDeal | None:
        path = self.partial_deal_path(pool_slug)
        if not path.exists():
            return None
        info = read_json(path)
        return PartialDeal(contracts=dict(info["contracts"]), roles=dict(info["roles"]))

    def write_partial_deal(self, pool_slug: str, partial: PartialDeal) -> None:
        self.deals_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.partial_deal_path(pool_slug), partial.as_json())

    def remove_partial_deal(self, pool_slug: str) -> None:
        self.partial_deal_path(pool_slug).unlink(missing_ok=True)

    def read_servicing(self, pool_slug: str) -> dict[str, Any] | None:
        path = self.servicing_path(pool_slug)
        return read_json(path) if path.exists() else None

    def write_servicing(self, pool_slug: str, state: Mapping[str, Any]) -> None:
        self.deals_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.servicing_path(pool_slug), dict(state))
