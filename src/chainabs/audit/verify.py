"""Running the checks: `verify_deal`, the chain half, and `audit`, everything a data dir allows."""

from __future__ import annotations

import time
from pathlib import Path

from chainabs import deal as deals
from chainabs.audit.api import check_api
from chainabs.audit.events import DealEvents, chain_periods, read_deal_events
from chainabs.audit.index import check_index
from chainabs.audit.loans import check_loans, check_period_tapes, check_tape, read_salt
from chainabs.audit.parameters import check_parameters, published_terms
from chainabs.audit.report import AuditReport, Check
from chainabs.audit.tokens import check_claims, check_registry, check_units, replay_tokens
from chainabs.audit.waterfall import check_cash, check_waterfall
from chainabs.context import Context
from chainabs.errors import InvalidInput
from chainabs.pool import PoolFiles
from chainabs.service import open_deal


def verify_deal(handle: deals.DealHandle, files: PoolFiles, *, events: DealEvents | None = None) -> list[Check]:
    """Every check that needs only the chain and the deal's published files."""
    ev = events or read_deal_events(handle, files)
    params, terms = check_parameters(handle, ev, published_terms(files))
    books = replay_tokens(ev)
    periods = chain_periods(ev)
    return [params, check_units(handle, ev, books), check_registry(handle, ev),
            *check_waterfall(handle, ev, terms, periods), *check_cash(handle, ev, periods, books),
            check_claims(handle, ev, books), check_loans(handle, files, ev), check_period_tapes(files, periods)]


def audit(ctx: Context, pool: str | None = None, *, tape: str | Path | None = None,
          salt_file: str | Path | None = None, api: bool = True) -> AuditReport:
    """Every check of a data dir's deal: the chain's, the index's, the API's and (given the
    tape and the salt) the loan commitments'."""
    if (tape is None) != (salt_file is None):
        raise InvalidInput("--tape and --salt-file go together: the commitments need both")
    salt = read_salt(salt_file) if salt_file is not None else None
    started = time.perf_counter()
    handle, files = open_deal(ctx, pool)
    ev = read_deal_events(handle, files)
    checks = verify_deal(handle, files, events=ev)
    terms = published_terms(files) or handle.params
    checks.append(check_index(ctx, ev))
    if api:
        checks.append(check_api(ctx, handle, files, ev, terms))
    if tape is not None and salt is not None:
        checks.append(check_tape(handle, files, ev, tape, salt))
    events = len(ev.events) + len(ev.cash_moves) + len(ev.commitments)
    return AuditReport(checks=checks, head=ev.head, events=events, seconds=time.perf_counter() - started)
