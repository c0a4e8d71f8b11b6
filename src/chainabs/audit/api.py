"""The API check: the audit API, run in-process as a user would call it, against the chain.

Holdings and claimable amounts of every holder, the pool's root and loan count, each period's
figures and each tranche's, all as of the index's head.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from chainabs import deal as deals
from chainabs.audit.asgi import AsgiClient, Reply
from chainabs.audit.events import DealEvents, chain_periods, committed_loans
from chainabs.audit.loans import pool_root
from chainabs.audit.report import Check, first
from chainabs.audit.tokens import TokenBook, replay_tokens
from chainabs.context import Context
from chainabs.datadir import INDEX_FILE, DataDir
from chainabs.indexer import Indexer
from chainabs.pool import PoolFiles
from chainabs.store import Store
from chainabs.waterfall import DealParams


def _copy_index(ctx: Context, folder: Path) -> Path | None:
    """A private copy of the data dir's index (the audit never writes to the operator's)."""
    path = DataDir(ctx.data_dir).index_path
    if not path.exists():
        return None
    source = Store(path, read_only=True)
    try:
        return source.copy_to(folder / path.name)
    finally:
        source.close()


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _find_period(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        if "interest_collected" in body:
            return body
        for value in body.values():
            if isinstance(value, dict) and "interest_collected" in value:
                return {**value, **({"tranches": body["tranches"]} if "tranches" in body else {})}
    return None


TRANCHE_KEYS = {"face": "face", "coupon_bps": "coupon_bps", "balance": "balance", "unpaid_interest": "unpaid",
                "units": "supply", "supply": "supply", "total_supply": "supply", "issued": "supply",
                "paid": "paid", "paid_total": "paid", "cash_paid": "paid", "claimed": "claimed",
                "claimed_total": "claimed", "credit_enhancement_units": "enhancement"}


def check_api(ctx: Context, handle: deals.DealHandle, files: PoolFiles, ev: DealEvents,
              terms: DealParams) -> Check:
    """The audit API, built in-process over a copy of the index (or a fresh one when the data
    dir has none), against the chain's figures at the index's head."""
    from chainabs.api import Settings, create_app  # imported here: the web app only when this check runs

    name = "api: the audit API's figures equal the chain's"
    problems: list[str] = []
    compared: dict[str, int] = {}
    not_checked: list[str] = []
    with tempfile.TemporaryDirectory(prefix="chainabs-audit-") as tmp:
        copied = _copy_index(ctx, Path(tmp))
        store = Store(copied or Path(tmp) / INDEX_FILE, chain_id=ctx.chain.chain_id)
        try:
            if copied is None:
                contracts = {a: n for a, n in ev.artifacts().items() if a != ev.loan_token}
                Indexer(ctx.chain, store, contracts, start_block=ev.start).sync()
            head = store.cursor()
            if head is None:
                return Check(name, None, {"index": "empty"})
            head = min(head, ev.head)
            books = replay_tokens(ev, upto=head)
            final_books = replay_tokens(ev)
            app = create_app(Settings(data_dir=ctx.data_dir), ctx, store=store)
            with AsgiClient(app) as client:
                holders = sorted({h for b in books for h, u in b.balances.items() if u}
                                 | {h for b in final_books for h in b.balances})
                for holder in holders:
                    reply = client.get(f"/investors/{holder}/holdings")
                    if reply.status_code != 200:
                        problems.append(f"holdings of {holder}: HTTP {reply.status_code}")
                        continue
                    items = {str(i["token"]).lower(): i for i in reply.json()["holdings"]}
                    for k, token in enumerate(ev.tokens):
                        item = items.get(token, {})
                        if _as_int(item.get("amount", 0)) != books[k].balances.get(holder, 0):
                            problems.append(f"holdings of {holder}, tranche {k}: API {item.get('amount', 0)}, "
                                            f"chain {books[k].balances.get(holder, 0)}")
                        compared["holdings"] = compared.get("holdings", 0) + 1
                        if "claimable" in item:
                            compared["claimable"] = compared.get("claimable", 0) + 1
                            if _as_int(item["claimable"]) != books[k].claimable(holder):  # at the index's head
                                problems.append(f"claimable of {holder}, tranche {k}: API {item['claimable']}")
                pool_key = files.dir.slug
                reply = client.get(f"/pools/{pool_key}")
                if reply.status_code == 200:
                    body = reply.json()
                    event_root, _ = pool_root(handle, ev)
                    compared["pool"] = 1
                    if body.get("root_on_chain") != event_root or body.get("loan_count") != len(committed_loans(ev)):
                        problems.append(f"/pools/{pool_key}: root {body.get('root_on_chain')}, "
                                        f"{body.get('loan_count')} loans")
                else:
                    problems.append(f"/pools/{pool_key}: HTTP {reply.status_code}")
                _api_periods(client, pool_key, ev, head, problems, compared, not_checked)
                _api_tranches(client, pool_key, ev, terms, books, head, problems, compared, not_checked)
        finally:
            store.close()
    return Check(name, not problems, {"index": "the data dir's (a copy)" if copied else "built for this audit",
                                      "as of block": head, "compared": compared, "not checked": not_checked,
                                      "differences": first(problems)})


def _route_missing(reply: Reply) -> bool:
    return reply.status_code == 404 and reply.json().get("error") == "Not Found"


def _api_periods(client: AsgiClient, pool_key: str, ev: DealEvents, head: int, problems: list[str],
                 compared: dict[str, int], not_checked: list[str]) -> None:
    for e, onchain in chain_periods(ev):
        if e.block_number > head:
            break
        reply = client.get(f"/pools/{pool_key}/periods/{onchain.period}")
        if _route_missing(reply):
            not_checked.append("/pools/{pool}/periods/{n} (no such route)")
            return
        body = _find_period(reply.json()) if reply.status_code == 200 else None
        if body is None:
            problems.append(f"period {onchain.period}: HTTP {reply.status_code}, no period figures")
            continue
        expected = {**onchain.as_dict(), "loan_root": str(e.args["figures"]["loan_root"]),
                    "loan_count": int(e.args["figures"]["loan_count"])}
        for key, value in expected.items():
            if key == "tranches" or key not in body:
                continue
            compared["period fields"] = compared.get("period fields", 0) + 1
            shown = body[key] if isinstance(value, str) else bool(body[key]) if isinstance(value, bool) \
                else _as_int(body[key])
            if shown != value:
                problems.append(f"period {onchain.period} {key}: API {body[key]}, chain {value}")
        for k, tranche in enumerate(body.get("tranches") or []):
            if not isinstance(tranche, dict) or k >= len(expected["tranches"]):
                continue
            for key, value in expected["tranches"][k].items():
                if key in tranche:
                    compared["period fields"] = compared.get("period fields", 0) + 1
                    if _as_int(tranche[key]) != value:
                        problems.append(f"period {onchain.period} tranches[{k}].{key}: API {tranche[key]}, "
                                        f"chain {value}")


def _api_tranches(client: AsgiClient, pool_key: str, ev: DealEvents, terms: DealParams, books: list[TokenBook],
                  head: int, problems: list[str], compared: dict[str, int], not_checked: list[str]) -> None:
    reply = client.get(f"/pools/{pool_key}/tranches")
    if _route_missing(reply):
        not_checked.append("/pools/{pool}/tranches (no such route)")
        return
    if reply.status_code != 200:
        problems.append(f"/pools/{pool_key}/tranches: HTTP {reply.status_code}")
        return
    body = reply.json()
    items = body.get("tranches", body.get("items")) if isinstance(body, dict) else body
    if not isinstance(items, list) or len(items) != len(ev.tokens):
        problems.append(f"/pools/{pool_key}/tranches: {len(items) if isinstance(items, list) else 'no'} "
                        f"tranches, the deal has {len(ev.tokens)}")
        return
    last = [r for e, r in chain_periods(ev) if e.block_number <= head]
    for k, item in enumerate(items):
        spec = terms.tranches[k]
        balance = last[-1].tranches[k].balance_end if last else spec.face
        unpaid = last[-1].tranches[k].interest_unpaid if last else 0
        seniors = sum(r.balance_end for r in last[-1].tranches[:k + 1]) if last else \
            sum(t.face for t in terms.tranches[:k + 1])
        pool_balance, reserve = (last[-1].pool_balance_end, last[-1].reserve_end) if last else \
            (terms.initial_balance, terms.initial_reserve)
        expected = {"face": spec.face, "coupon_bps": spec.coupon_bps, "balance": balance, "unpaid": unpaid,
                    "supply": books[k].supply, "paid": books[k].paid, "claimed": books[k].claimed,
                    "enhancement": pool_balance + reserve - seniors}
        for key, what in TRANCHE_KEYS.items():
            if isinstance(item, dict) and key in item and _as_int(item[key]) is not None:
                compared["tranche fields"] = compared.get("tranche fields", 0) + 1
                if _as_int(item[key]) != expected[what]:
                    problems.append(f"tranche {k} {key}: API {item[key]}, chain {expected[what]}")
        if isinstance(item, dict) and "address" in item and str(item["address"]).lower() != ev.tokens[k]:
            problems.append(f"tranche {k} address: API {item['address']}")
