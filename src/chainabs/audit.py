"""Checks anyone can run against a deal, from the chain and the pool's published files.

Each check is a name, PASS or FAIL, and the figures it compared. This is the chain-state half
of the audit: every period re-run through the reference model from the chain's own
carried state, cash conservation in the deal contract, claims never above what was paid, the
pool's Merkle root recomputed from its committed loan rows, and every period tape's root.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from chainabs import deal as deals
from chainabs import merkle
from chainabs.operations import period_root
from chainabs.pool import PoolFiles
from chainabs.waterfall import DealState, PeriodReport, run_period


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.name, "result": "PASS" if self.ok else "FAIL", "detail": self.detail}


def verify_deal(handle: deals.DealHandle, files: PoolFiles) -> list[Check]:
    checks: list[Check] = []
    chain = handle.chain
    final = deals.read_state(handle)

    state = DealState.initial(handle.params)
    mismatches = []
    for n in range(1, final.period + 1):
        onchain = deals.read_period(handle, n=n)
        report = PeriodReport(onchain.interest_collected, onchain.principal_collected, onchain.recoveries,
                              onchain.defaulted_principal)
        expected, state = run_period(handle.params, state, report)
        if expected != onchain:
            mismatches.append(n)
    checks.append(Check("waterfall: every period equals the reference model", not mismatches,
                        f"{final.period} periods re-run" + (f"; differ: {mismatches}" if mismatches else "")))
    checks.append(Check("waterfall: carried state equals the model's", state == final,
                        f"tranche balances {final.tranche_balances}, reserve {final.reserve}"))

    ledger = deals.cash_ledger(handle)
    balance = int(chain.call(handle.settlement.functions.balanceOf(handle.deal.address)))
    held_for_holders = sum(p - c for p, c in zip(ledger.paid, ledger.claimed, strict=True))
    checks.append(Check("cash: deal balance = reserve + paid not yet claimed",
                        balance == final.reserve + held_for_holders,
                        f"balance {balance}, reserve {final.reserve}, unclaimed {held_for_holders}"))
    over = [k for k, (p, c, o) in enumerate(zip(ledger.paid, ledger.claimed, ledger.owed, strict=True)) if c + o > p]
    checks.append(Check("claims: claimed + claimable never exceed what each tranche was paid", not over,
                        f"paid {list(ledger.paid)}, claimed {list(ledger.claimed)}, dust {list(ledger.dust)}"))

    leaves = []
    for row in files.rows:
        values = list(row)
        values[1] = bytes.fromhex(row[1][2:])
        leaves.append(merkle.leaf_from_loan_hash(merkle.hash_values(values)))
    root = "0x" + merkle.MerkleTree.from_leaves(leaves).root.hex()
    pool = chain.contract("LoanPool", files.record.address)
    onchain_root = "0x" + bytes(chain.call(pool.functions.loanRoot())).hex()
    checks.append(Check("loans: Merkle root of the published loan rows equals the pool's root",
                        root == onchain_root, f"{len(leaves)} loans, root {root}"))

    bad_periods = []
    for path in sorted((files.folder / "periods").glob("*.json")) if (files.folder / "periods").exists() else []:
        tape = json.loads(path.read_text())
        if "0x" + period_root(files.rows, tape["statuses"], tape["outstanding"]).hex() != tape["root"]:
            bad_periods.append(path.stem)
        balance_end = deals.read_period(handle, n=int(path.stem)).pool_balance_end
        if sum(tape["outstanding"]) != balance_end:
            bad_periods.append(f"{path.stem} (balance)")
    checks.append(Check("periods: each loan-level tape matches its root and the pool balance", not bad_periods,
                        "all period tapes consistent" if not bad_periods else f"inconsistent: {bad_periods}"))
    return checks
