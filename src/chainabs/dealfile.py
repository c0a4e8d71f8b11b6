"""The deal file (TOML): a pool, its eligibility criteria and, optionally, its tranches.

    [pool]           name, currency, cutoff_date, decimals, settlement_token (optional)
    [eligibility]    optional overrides of TAPE.md's default criteria
    [deal]           servicer_fee_bps, reserve_target_bps, default_trigger_bps, initial_reserve;
                     version 2 (WATERFALL.md): revolving_periods (default 0), principal_mode
                     ("sequential", the default, or "pro_rata"), cleanup_call_bps (default 0)
    [[tranches]]     name, symbol, face, coupon_bps; 2 to 5 of them, most senior first
    [[triggers]]     metric, threshold_bps, effect, curable (default false); 0 to 8 of them
    [concentration]  max_region_share ("25%"), max_borrower_outstanding (an amount),
                     min_wac_bps; each optional (left out: no limit); checked on purchases
    [roles]          optional: who holds each role of the deal (ROLE_KEYS), an address each;
                     a role left out is held by the account that deploys the deal

A file with only [pool] (and [eligibility]) describes a pool without tranches; [deal] and
[[tranches]] come together, and [[triggers]] and [concentration] need them. Triggers:
`default_trigger_bps` alone is version 1's one trigger {cumulative_default, that threshold,
turbo, not curable}; a version 2 deal lists its `[[triggers]]` instead (`triggers = []` for
none) and may not also give `default_trigger_bps`. Every problem is a `DealError(field, reason)` whose field is the
path of the bad value (`tranches[1].coupon_bps`, `pool.cutoff_date`), or the file name for a
file that is not TOML at all; pydantic's own errors never leave `load_deal_file` and
`parse_deal_file` (calling `DealFile.model_validate` directly raises pydantic's
ValidationError for type errors; the rules spanning fields raise DealError either way).

Amounts never go through float: an amount is a decimal string in currency units ("10000.00",
at most `decimals` places) or a TOML integer, and a TOML float is refused. A share is a string
such as "80%" or "12.5%" that must be a whole number of basis points; it resolves against the
pool balance in base units as floor(pool * bps / 10000).

Faces (`deal_params`): every tranche but the last has a face; the last (the residual) takes
pool - sum(others), so the faces add up to the pool balance exactly. The residual may write
face = "rest" or leave it out; if it states a face, that face must agree with what the others
leave, up to the rounding of the share faces (each floor loses less than one unit).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from chainabs.datadir import pool_name_problem, shown_name
from chainabs.errors import DealError
from chainabs.waterfall import (
    BPS,
    EFFECTS,
    MAX_REVOLVING_PERIODS,
    MAX_TRANCHES,
    MAX_TRIGGERS,
    METRICS,
    MIN_TRANCHES,
    PRINCIPAL_MODES,
    DealParams,
    TrancheSpec,
    Trigger,
)

if TYPE_CHECKING:
    from chainabs.tape import Eligibility

MAX_DECIMALS = 36            # as tape.MAX_DECIMALS
MAX_TAPE_RATE_BPS = 3600     # TAPE.md: annual_rate <= 0.36
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_PLAIN_DECIMAL = re.compile(r"(\d+)(?:\.(\d+))?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_SYMBOL = re.compile(r"[A-Za-z0-9._-]{1,16}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")
# the keys of [roles]: chainabs.deal.DealRoles' fields
ROLE_KEYS = ("admin", "token_admin", "registry_admin", "operator", "servicer", "originator", "fee_recipient",
             "compliance", "agent")


# --- values --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """A share of the pool balance, in whole basis points."""

    bps: int

    def units(self, pool_balance_units: int) -> int:
        return pool_balance_units * self.bps // BPS

    def __str__(self) -> str:
        whole, frac = divmod(self.bps, 100)
        return f"{whole}.{frac:02d}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class Amount:
    """An amount in currency units, kept as its exact decimal text."""

    text: str

    def units(self, decimals: int) -> int:
        """Base units; ValueError when the amount has more places than the token."""
        whole, _, frac = self.text.partition(".")
        frac = frac.rstrip("0")
        if len(frac) > decimals:
            raise ValueError(f"{self.text} has more decimal places than the {decimals}-decimal "
                             "settlement token")
        return int(whole) * 10 ** decimals + (int(frac) * 10 ** (decimals - len(frac)) if frac else 0)

    def __str__(self) -> str:
        return self.text


def _amount(value: Any) -> Amount:
    """A TOML integer or a plain decimal string, >= 0."""
    if isinstance(value, bool):
        raise ValueError(f"must be an amount, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return Amount(str(value))
    if isinstance(value, float):
        raise ValueError(f'write amounts as strings, e.g. "{value}" (TOML floats are inexact)')
    if not isinstance(value, str):
        raise ValueError(f"must be an amount such as \"10000.00\", got {value!r}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"must not be negative, got {value!r}")
    if not text.isascii() or not _PLAIN_DECIMAL.fullmatch(text) or len(text) > 40:
        raise ValueError(f"not a plain decimal amount (like \"10000.00\"), got {value!r}")
    return Amount(text)


def _share(text: str) -> Share:
    number = text[:-1].strip()
    if number.startswith("-"):
        raise ValueError(f"must not be negative, got {text!r}")
    if not number.isascii() or not _PLAIN_DECIMAL.fullmatch(number) or len(number) > 20:
        raise ValueError(f"not a percentage like \"12.5%\", got {text!r}")
    hundredths = Amount(number)
    try:
        bps = hundredths.units(2)
    except ValueError:
        raise ValueError(f"must be a whole number of basis points (at most 2 decimal places "
                         f"of a percent), got {text!r}") from None
    if bps > BPS:
        raise ValueError(f"must be at most 100%, got {text!r}")
    return Share(bps)


def _amount_or_share(value: Any) -> Amount | Share:
    if isinstance(value, str) and value.strip().endswith("%"):
        return _share(value.strip())
    return _amount(value)


def _face(value: Any) -> Amount | Share | None:
    """None stands for the residual's "rest"."""
    if value is None or (isinstance(value, str) and value.strip() == "rest"):
        return None
    face = _amount_or_share(value)
    if (isinstance(face, Share) and face.bps == 0) or (isinstance(face, Amount) and not face.text.strip("0.")):
        raise ValueError(f"must be more than 0, got {value!r}")
    return face


def _address(value: str) -> str:
    """An account address: 0x and 40 hex digits, not zero, EIP-55 checked when mixed-case;
    returned checksummed."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError(f"must be an address: 0x and 40 hex digits, got {value!r}")
    if int(value, 16) == 0:
        raise ValueError("must not be the zero address")
    from eth_utils import is_checksum_address, to_checksum_address
    if value != value.lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
        raise ValueError(f"mixed-case address with a wrong EIP-55 checksum: {value!r}")
    return str(to_checksum_address(value))


def _bps(value: int) -> int:
    if not 0 <= value <= BPS:
        raise ValueError(f"must be a number of basis points in 0..{BPS}, got {value}")
    return value


def _in_range(low: int, high: int, what: str = "") -> Any:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be{what} in {low}..{high}, got {value}")
        return value
    return AfterValidator(check)


def _text(max_chars: int) -> Any:
    def check(value: str) -> str:
        text = value.strip()
        if not text or len(text) > max_chars:
            raise ValueError(f"must be 1 to {max_chars} characters, got {shown_name(value)} ({len(value)} characters)")
        return text
    return AfterValidator(check)


def _date(value: Any) -> Any:
    """A TOML date (2026-10-01) or the string "2026-10-01"; no times, nothing before 1970."""
    if isinstance(value, datetime):
        raise ValueError("must be a date without a time, like 2026-10-01")
    if isinstance(value, str):
        text = value.strip()
        if len(text) != 10 or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(f"not a date in YYYY-MM-DD form, got {value!r}")
        try:
            value = date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"no such calendar date: {value!r}") from None
    if isinstance(value, date) and value.toordinal() < _EPOCH_ORDINAL:
        raise ValueError(f"must be on or after 1970-01-01, got {value.isoformat()}")
    return value


Bps = Annotated[int, AfterValidator(_bps)]
Face = Annotated[Any, BeforeValidator(_face)]
AmountOrShare = Annotated[Any, BeforeValidator(_amount_or_share)]
OptionalAmount = Annotated[Any, BeforeValidator(lambda v: None if v is None else _amount(v))]


# --- the file's sections -------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True,
                              arbitrary_types_allowed=True)


class PoolSection(_Section):
    name: Annotated[str, _text(128)]
    currency: str
    cutoff_date: Annotated[date, BeforeValidator(_date)]
    decimals: Annotated[int, _in_range(0, MAX_DECIMALS)]
    settlement_token: str | None = None

    @field_validator("name")
    @classmethod
    def _folder_name(cls, value: str) -> str:
        problem = pool_name_problem(value)
        if problem is not None:
            raise ValueError(f"{shown_name(value)} {problem}")
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not _CURRENCY.fullmatch(value):
            raise ValueError(f"must be three upper-case letters (ISO 4217), got {value!r}")
        return value

    @field_validator("settlement_token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        return None if value is None else _address(value)

    @property
    def cutoff_day(self) -> int:
        """The cut-off date as days since 1970-01-01."""
        return self.cutoff_date.toordinal() - _EPOCH_ORDINAL


class EligibilitySection(_Section):
    """Overrides of TAPE.md's default criteria; a key left out keeps its default."""

    statuses: list[str] | None = None
    max_rate_bps: Annotated[int, _in_range(0, MAX_TAPE_RATE_BPS, " a rate in bps")] | None = None
    min_outstanding: OptionalAmount = None
    max_term_months: Annotated[int, _in_range(1, 120)] | None = None
    min_credit_score: Annotated[int, _in_range(300, 950)] | None = None
    products: list[str] | None = None

    @field_validator("statuses", "products")
    @classmethod
    def _names(cls, value: list[str] | None, info: Any) -> list[str] | None:
        if value is None:
            return None
        from chainabs import tape
        known, what = ((tape.STATUSES, "status") if info.field_name == "statuses"
                       else (tape.PRODUCTS, "product"))
        if not value:
            raise ValueError("must name at least one")
        for name in value:
            if name not in known:
                raise ValueError(f"unknown {what} {name!r} (one of {', '.join(known)})")
        if len(set(value)) != len(value):
            raise ValueError("names a value twice")
        return value


def _one_of(names: tuple[str, ...]) -> Any:
    def check(value: str) -> str:
        if value not in names:
            raise ValueError(f"must be one of {', '.join(repr(n) for n in names)}, got {value!r}")
        return value
    return AfterValidator(check)


def _share_only(value: Any) -> Share:
    if not isinstance(value, str) or not value.strip().endswith("%"):
        raise ValueError(f'must be a share of the pool such as "25%", got {value!r}')
    return _share(value.strip())


class DealSection(_Section):
    servicer_fee_bps: Bps
    reserve_target_bps: Bps
    default_trigger_bps: Bps | None = None
    initial_reserve: AmountOrShare = Amount("0")
    revolving_periods: Annotated[int, _in_range(0, MAX_REVOLVING_PERIODS)] = 0
    principal_mode: Annotated[str, _one_of(PRINCIPAL_MODES)] = "sequential"
    cleanup_call_bps: Bps = 0


class TriggerSection(_Section):
    metric: Annotated[str, _one_of(METRICS)]
    threshold_bps: Bps
    effect: Annotated[str, _one_of(EFFECTS)]
    curable: bool = False


class ConcentrationSection(_Section):
    """Limits on the pool after a purchase; a key left out is no limit."""

    max_region_share: Annotated[Any, BeforeValidator(_share_only)] = None
    max_borrower_outstanding: OptionalAmount = None
    min_wac_bps: Annotated[int, _in_range(0, MAX_TAPE_RATE_BPS, " a rate in bps")] | None = None


@dataclass(frozen=True)
class ConcentrationLimits:
    """The concentration limits in base units and bps (None: no limit): the largest share of
    the pool's outstanding units in one region, the most outstanding units of one borrower
    reference, the lowest outstanding-weighted average coupon."""

    max_region_share_bps: int | None = None
    max_borrower_outstanding_units: int | None = None
    min_wac_bps: int | None = None


class TrancheSection(_Section):
    name: Annotated[str, _text(64)]
    symbol: str
    face: Face = None
    coupon_bps: Bps

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not _SYMBOL.fullmatch(value):
            raise ValueError(f"must be 1 to 16 characters of A-Z a-z 0-9 . _ -, got {value!r}")
        return value


Address = Annotated[str, AfterValidator(_address)]


class RolesSection(_Section):
    """Who holds each role of the deal (see SECURITY.md's roles table); a key left out: the
    account that deploys the deal."""

    admin: Address | None = None           # proposes on the deal's admin timelock (the trustee)
    token_admin: Address | None = None     # proposes on the tranche tokens' timelock (appoints the agent)
    registry_admin: Address | None = None  # proposes on the registry's timelock (appoints compliance)
    operator: Address | None = None        # opens, allocates and closes the offering; paying agent
    servicer: Address | None = None        # posts period reports and pays collections in
    originator: Address | None = None      # receives proceeds and unsold units, funds the reserve
    fee_recipient: Address | None = None   # receives the servicer fee
    compliance: Address | None = None      # the registry's compliance: adds, freezes, revokes investors
    agent: Address | None = None           # the tokens' transfer agent: forced transfers, pauses

    def chosen(self) -> dict[str, str]:
        """The roles the file names, by key."""
        return {key: value for key in ROLE_KEYS if (value := getattr(self, key)) is not None}


class DealFile(_Section):
    """A validated deal file; `.eligibility()` and `.deal_params()` turn it into the inputs of
    tape.apply_eligibility and of the waterfall."""

    pool: PoolSection
    criteria: EligibilitySection = Field(default_factory=EligibilitySection, alias="eligibility")
    deal: DealSection | None = None
    tranches: list[TrancheSection] = Field(default_factory=list)
    triggers: list[TriggerSection] | None = None
    concentration: ConcentrationSection | None = None
    roles: RolesSection | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DealFile:
        _check_deal(self)
        return self

    @property
    def has_tranches(self) -> bool:
        return bool(self.tranches)

    def chosen_roles(self) -> dict[str, str]:
        """The [roles] the file names, by key (none: every role with the deploying account)."""
        return self.roles.chosen() if self.roles is not None else {}

    def eligibility(self) -> Eligibility:
        """The pool's criteria: TAPE.md's defaults with this file's overrides and cut-off."""
        from chainabs import tape
        c = self.criteria
        kwargs: dict[str, Any] = {"cutoff_day": self.pool.cutoff_day}
        if c.statuses is not None:
            kwargs["statuses"] = frozenset(c.statuses)
        if c.max_rate_bps is not None:
            kwargs["max_rate_bps"] = c.max_rate_bps
        if c.min_outstanding is not None:
            kwargs["min_outstanding_units"] = c.min_outstanding.units(self.pool.decimals)
        if c.max_term_months is not None:
            kwargs["max_term_months"] = c.max_term_months
        if c.min_credit_score is not None:
            kwargs["min_credit_score"] = c.min_credit_score
        if c.products is not None:
            kwargs["products"] = frozenset(c.products)
        return tape.Eligibility(**kwargs)

    def deal_params(self, pool_balance_units: int) -> DealParams:
        """The waterfall's parameters for a pool of `pool_balance_units` (the eligible loans'
        outstanding units): faces and the initial reserve resolved to base units."""
        if self.deal is None or not self.tranches:
            raise DealError("tranches", "the deal file has no [deal] section and no tranches: "
                                        "it describes a pool only")
        pool = pool_balance_units
        if isinstance(pool, bool) or not isinstance(pool, int) or pool <= 0:
            raise DealError("pool", f"the pool balance must be more than 0 units, got {pool!r}")
        decimals = self.pool.decimals
        faces: list[int] = []
        for i, t in enumerate(self.tranches[:-1]):
            face = _resolve(t.face, pool, decimals)
            if face <= 0:
                raise DealError(f"tranches[{i}].face", f"{t.face} of a pool of {pool} units rounds to 0")
            faces.append(face)
            if sum(faces) >= pool:
                raise DealError(f"tranches[{i}].face",
                                f"tranches[0..{i}] add up to {sum(faces)} units, the pool balance "
                                f"is {pool}: nothing is left for the residual tranche")
        last = len(self.tranches) - 1
        residual = pool - sum(faces)
        stated = self.tranches[last].face
        if stated is not None:
            shares = sum(isinstance(t.face, Share) for t in self.tranches)
            gap = residual - _resolve(stated, pool, decimals)
            if not 0 <= gap <= max(0, shares - 1):
                raise DealError(f"tranches[{last}].face",
                                f"{stated} is {residual - gap} units but the other tranches leave "
                                f"{residual} of the pool's {pool}: the residual tranche takes what "
                                f"the others leave; write face = \"rest\" or leave it out")
        faces.append(residual)
        reserve = _resolve(self.deal.initial_reserve, pool, decimals)
        triggers = None if self.triggers is None else tuple(
            Trigger(metric=t.metric, threshold_bps=t.threshold_bps, effect=t.effect, curable=t.curable)
            for t in self.triggers)
        params = DealParams(
            tranches=tuple(TrancheSpec(name=t.name, symbol=t.symbol, face=face, coupon_bps=t.coupon_bps)
                           for t, face in zip(self.tranches, faces, strict=True)),
            servicer_fee_bps=self.deal.servicer_fee_bps,
            reserve_target_bps=self.deal.reserve_target_bps,
            initial_reserve=reserve,
            default_trigger_bps=self.deal.default_trigger_bps or 0,
            revolving_periods=self.deal.revolving_periods,
            principal_mode=self.deal.principal_mode,
            cleanup_call_bps=self.deal.cleanup_call_bps,
            triggers=triggers,
        )
        params.validate()
        return params


    def concentration_limits(self) -> ConcentrationLimits:
        """The [concentration] limits resolved to base units (none: no limits)."""
        c = self.concentration
        if c is None:
            return ConcentrationLimits()
        return ConcentrationLimits(
            max_region_share_bps=None if c.max_region_share is None else c.max_region_share.bps,
            max_borrower_outstanding_units=(None if c.max_borrower_outstanding is None
                                            else c.max_borrower_outstanding.units(self.pool.decimals)),
            min_wac_bps=c.min_wac_bps,
        )


def _resolve(value: Amount | Share, pool: int, decimals: int) -> int:
    return value.units(pool) if isinstance(value, Share) else value.units(decimals)


def _check_deal(f: DealFile) -> None:
    """The rules that span fields; raises DealError naming the field."""
    decimals = f.pool.decimals
    if f.criteria.min_outstanding is not None:
        _check_units("eligibility.min_outstanding", f.criteria.min_outstanding, decimals)
        if f.criteria.min_outstanding.units(decimals) == 0:
            raise DealError("eligibility.min_outstanding", "must be more than 0")
    if f.deal is None and not f.tranches:
        for section in ("triggers", "concentration"):
            if getattr(f, section) is not None:
                raise DealError("deal", f"the [deal] section and tranches are required when the file has "
                                        f"{'[[triggers]]' if section == 'triggers' else '[concentration]'}")
        if f.roles is not None:
            raise DealError("roles", "names the parties of a deal, and the file has no [deal] and [[tranches]]")
        return
    if f.deal is None:
        raise DealError("deal", "the [deal] section is required when the file has tranches")
    n = len(f.tranches)
    if not MIN_TRANCHES <= n <= MAX_TRANCHES:
        raise DealError("tranches", f"a deal has {MIN_TRANCHES} to {MAX_TRANCHES} tranches, "
                                    f"the file has {n}")
    if isinstance(f.deal.initial_reserve, Amount):
        _check_units("deal.initial_reserve", f.deal.initial_reserve, decimals)
    _check_triggers(f.deal, f.triggers)
    if f.concentration is not None and f.concentration.max_borrower_outstanding is not None:
        _check_units("concentration.max_borrower_outstanding", f.concentration.max_borrower_outstanding, decimals)
    seen: dict[tuple[str, str], int] = {}
    shares = 0
    for i, t in enumerate(f.tranches):
        for attr in ("name", "symbol"):
            value = getattr(t, attr)
            first = seen.setdefault((attr, value), i)
            if first != i:
                raise DealError(f"tranches[{i}].{attr}", f"duplicate {attr} {value!r} (also tranches[{first}])")
        if t.face is None and i < n - 1:
            raise DealError(f"tranches[{i}].face", "required: only the last (residual) tranche may "
                                                   "leave its face out or write \"rest\"")
        if isinstance(t.face, Amount):
            _check_units(f"tranches[{i}].face", t.face, decimals)
        if isinstance(t.face, Share):
            shares += t.face.bps
            if i < n - 1 and shares >= BPS:
                raise DealError(f"tranches[{i}].face", f"the shares of tranches[0..{i}] add up to "
                                f"{Share(shares)}, leaving nothing for the residual tranche")
    if f.tranches[-1].coupon_bps != 0:
        raise DealError(f"tranches[{n - 1}].coupon_bps", "the last (residual) tranche's coupon must be 0")
    if all(isinstance(t.face, Share) for t in f.tranches) and shares != BPS:
        raise DealError(f"tranches[{n - 1}].face", f"the shares add up to {Share(shares)}, not 100%: "
                        "write face = \"rest\" for the residual tranche or leave it out")


def _check_triggers(deal: DealSection, triggers: list[TriggerSection] | None) -> None:
    """`default_trigger_bps` alone (version 1's trigger) or `[[triggers]]`, not both, not neither."""
    if triggers is None:
        if deal.default_trigger_bps is None:
            raise DealError("deal.default_trigger_bps", "required key missing (or list the deal's [[triggers]]; "
                                                        "write triggers = [] for none)")
        return
    if deal.default_trigger_bps is not None:
        raise DealError("deal.default_trigger_bps",
                        "not allowed beside [[triggers]]: it is version 1's one trigger; list it as a trigger "
                        f'with metric = "cumulative_default", threshold_bps = {deal.default_trigger_bps}, '
                        'effect = "turbo"')
    if len(triggers) > MAX_TRIGGERS:
        raise DealError("triggers", f"a deal has at most {MAX_TRIGGERS} triggers, the file has {len(triggers)}")


def _check_units(field: str, amount: Amount, decimals: int) -> None:
    try:
        amount.units(decimals)
    except ValueError as exc:
        raise DealError(field, str(exc)) from None


# --- reading -------------------------------------------------------------------------------


def load_deal_file(path: str | Path) -> DealFile:
    """Read and validate a deal file; every problem is a DealError."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DealError(str(p), f"cannot read the file: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise DealError(p.name, f"line {line}: not valid UTF-8") from None
    return parse_deal_file(text, p.name)


def parse_deal_file(text: str, name: str = "<deal>") -> DealFile:
    """Validate a deal file held in memory; `name` appears in errors about the file as a whole."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _TOML_POSITION.search(message)
        if where:
            message = f"line {where[1]}, column {where[2]}: {message[:where.start()]}"
        raise DealError(name, f"not valid TOML: {message}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays and inline tables
        raise DealError(name, "not valid TOML: arrays or tables nested too deeply") from None
    try:
        return DealFile.model_validate(data)
    except ValidationError as exc:
        raise _deal_error(exc) from None
    except RecursionError:
        raise DealError(name, "a value is nested too deeply") from None


_KNOWN_KEYS = sorted({info.alias or key
                      for model in (DealFile, PoolSection, EligibilitySection, DealSection, TrancheSection,
                                    TriggerSection, ConcentrationSection, RolesSection)
                      for key, info in model.model_fields.items()})
_TYPE_WORDS = {
    "int_type": "an integer", "string_type": "a string", "list_type": "a list",
    "model_type": "a table", "dict_type": "a table", "bool_type": "true or false",
    "date_type": "a date like 2026-10-01",
}


def _deal_error(exc: ValidationError) -> DealError:
    # An unknown key first: a misspelt key also makes the right one "missing".
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    problems = [(_path(e["loc"]), _reason(e)) for e in errors]
    field, reason = problems[0]
    if len(problems) > 1:
        also = "; ".join(f"{f}: {r}" for f, r in problems[1:4])
        more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
        reason = f"{reason} (also {also}{more})"
    return DealError(field, reason)


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _path(loc: tuple[int | str, ...]) -> str:
    """A TOML-style path to the value; a key that is not a plain bare key is quoted (as TOML
    would quote it), so a message never carries a raw newline or control character."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = str(part) if _BARE_KEY.fullmatch(str(part)) else repr(str(part)[:64])
        out += f".{key}" if out else key
    return out or "<deal>"


def _reason(error: Any) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "required key missing"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
        return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind in _TYPE_WORDS:
        shown = "a table" if isinstance(value, dict) else "a list" if isinstance(value, list) else repr(value)
        return f"must be {_TYPE_WORDS[kind]}, got {shown}"
    message = str(error["msg"])
    return message[:1].lower() + message[1:]
