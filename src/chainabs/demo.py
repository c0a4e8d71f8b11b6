"""The main job: a whole deal's life on the embedded chain, end to end."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainabs import deal as deals
from chainabs import service
from chainabs.audit import verify_deal
from chainabs.context import Context, open_context
from chainabs.datadir import DataDir, fsync_dir
from chainabs.dealfile import parse_deal_file
from chainabs.tapegen import write_tape

DEMO_DEAL = """
[pool]
name = "Demo Consumer Loans 2026-1"
currency = "EUR"
cutoff_date = 2026-10-01
decimals = 6

[deal]
servicer_fee_bps = 100
reserve_target_bps = 100
initial_reserve = "1%"
default_trigger_bps = 500

[[tranches]]
name = "Class A"
symbol = "DEMO-A"
face = "80%"
coupon_bps = 400

[[tranches]]
name = "Class B"
symbol = "DEMO-B"
face = "12%"
coupon_bps = 800

[[tranches]]
name = "Class C"
symbol = "DEMO-C"
face = "rest"
coupon_bps = 0
"""


def run_demo(*, data_dir: Path, loans: int = 10_000, periods: int = 12, seed: int = 7,
             say: Callable[[str], None] = print, ctx: Context | None = None) -> dict[str, Any]:
    """The demo over `data_dir` (resumable); `ctx`: an already open context of that data dir.
    Every step is a service-layer operation, as the CLI and the API run them."""
    started = time.perf_counter()
    ctx = ctx or open_context(data_dir=data_dir)
    dealfile = parse_deal_file(DEMO_DEAL, name="demo deal")
    tape = DataDir(data_dir).demo_tape
    if not tape.exists():  # written under another name and renamed: a killed run leaves no half tape
        partial = tape.with_name(tape.name + ".partial")
        write_tape(partial, loans, seed, "csv")
        with open(partial, "rb") as fh:  # durable before the rename makes it the tape (as write_atomic)
            os.fsync(fh.fileno())
        os.replace(partial, tape)
        fsync_dir(tape.parent)
    say(f"tape: {loans} loans in {tape}")
    report = service.create_pool(ctx, tape=service.TapeSource.file(tape), dealfile=dealfile).report
    say(f"pool {report.pool}: {report.eligible} eligible loans minted, {report.outstanding_units} units outstanding")
    if not any(DataDir(ctx.data_dir).deal_files()):
        service.create_deal(ctx, dealfile=dealfile)
    handle, files = service.open_deal(ctx)
    investors = ctx.chain.accounts[1:6]
    faces = [t.face for t in handle.params.tranches]
    if deals.phase(handle) != "closed" and deals.read_state(handle).period == 0:
        service.add_investors(ctx, investors=investors)
        for who in investors:
            service.fund(ctx, to=who, amount=faces[0])
        split = [(0, investors[0], faces[0] // 2), (0, investors[1], faces[0] // 4), (0, investors[2], faces[0] // 4),
                 (1, investors[3], faces[1] * 2 // 3), (1, investors[4], faces[1] // 3)]
        for k, who, units in split:
            service.subscribe(ctx, investor=who, tranche=k, units=units)
        service.close_offering(ctx)  # unsold units and the residual tranche stay with the originator
        say(f"issued {len(faces)} tranches to {len(investors)} investors; offering closed")
    half = periods // 2

    def simulate(up_to: int) -> None:
        service.simulate(ctx, periods=up_to - deals.read_state(handle).period, cdr=0.06, cpr=0.12, recovery=0.35,
                         lag=3, seed=seed, cutoff_day=dealfile.pool.cutoff_day)

    if deals.read_state(handle).period < half:
        simulate(half)
        service.transfer(ctx, sender=investors[0], to=investors[1], tranche=0, units=faces[0] // 20)
        service.trade(ctx, seller=investors[2], buyer=investors[4], tranche=0, units=faces[0] // 40,
                      price=faces[0] // 40 - faces[0] // 4000)
        say(f"{half} periods run; investors traded tranche A units")
    if deals.read_state(handle).period < periods:
        simulate(periods)
    claimed = {who: service.claim(ctx, holder=who) for who in investors}
    checks = verify_deal(handle, files)
    ok = all(c.ok for c in checks)
    state = deals.read_state(handle)
    return {
        "pool": report.pool, "loans": report.eligible, "periods": state.period,
        "verify": "PASS" if ok else "FAIL", "checks": [c.as_dict() for c in checks],
        "tranches": [{"symbol": t.symbol, "face": t.face, "balance": b, "unpaid_interest": u}
                     for t, b, u in zip(handle.params.tranches, state.tranche_balances, state.unpaid_interest,
                                        strict=True)],
        "pool_balance": state.pool_balance, "reserve": state.reserve,
        "cumulative_defaults": state.cumulative_defaults, "trigger_breached": state.trigger_breached,
        "claimed": claimed, "data_dir": str(ctx.data_dir), "seconds": round(time.perf_counter() - started, 1),
        "contracts": handle.addresses, "pool_name": files.record.name,
    }
