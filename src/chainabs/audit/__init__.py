"""Checks anyone can run against a deal, from the chain's events and the deal's published files.

Each check is a name, a result (PASS, FAIL, or NOT CHECKED when what it needs is absent) and
the figures it compared. Where each check lives:

    report.py      Check, AuditReport: results and how they are shown
    events.py      the deal's events, read straight from the chain with eth_getLogs
    parameters.py  parameters: the Deal was deployed with the published terms
    tokens.py      the tranche tokens replayed from events; units, registry, claims
    waterfall.py   waterfall: every period replayed through the reference model; cash
    loans.py       loans, periods, and (given the tape and the salt) tape: commitments and roots
    index.py       index: the SQLite index, read through the store, equals the chain's events
    api.py         api: the audit API's figures equal the chain's (asgi.py runs it in-process)
    verify.py      verify_deal (the chain half, from events alone) and audit (everything)

`verify_deal(handle, files)` needs only the chain and the deal's published files;
`audit(ctx, pool)` adds what needs the data dir: the index, the API and, given the loan tape
and the pool's salt, every loan commitment and the pool's root recomputed from scratch.
"""

from chainabs.audit.api import check_api
from chainabs.audit.events import ChainEvent, DealEvents, chain_periods, read_deal_events
from chainabs.audit.index import check_index
from chainabs.audit.loans import check_loans, check_period_tapes, check_tape, read_salt
from chainabs.audit.parameters import check_parameters, constructor_terms, published_terms
from chainabs.audit.report import AuditReport, Check, passed
from chainabs.audit.tokens import TokenBook, check_claims, check_registry, check_units, replay_tokens
from chainabs.audit.verify import audit, verify_deal
from chainabs.audit.waterfall import check_cash, check_waterfall

__all__ = [
    "AuditReport", "ChainEvent", "Check", "DealEvents", "TokenBook", "audit", "chain_periods", "check_api",
    "check_cash", "check_claims", "check_index", "check_loans", "check_parameters", "check_period_tapes",
    "check_registry", "check_tape", "check_units", "check_waterfall", "constructor_terms", "passed",
    "published_terms", "read_deal_events", "read_salt", "replay_tokens", "verify_deal",
]
