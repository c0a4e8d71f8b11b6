"""Deal benchmarks (issues 4 and 5), wired into scripts/bench.py as `transfer` and `distribute`.

bench_transfer():   receipt gas of a tranche transfer between two eligible holders who both hold
                    unclaimed distributions, against an unmodified OpenZeppelin ERC-20 transfer
                    between the same two accounts (both already holders), and the ratio.
bench_distribute(): receipt gas of one period's report with `holders_small` holders per tranche
                    and with `holders_large`, their ratio, and the gas of a holder's claim.

Both run on a fresh embedded chain. Holders of the large deal are plain addresses (they never
sign): registered in registry batches and placed through the operator's batch allocation, the
same code paths a real offering uses.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from chainabs import deal as d
from chainabs.chain import EmbeddedChain
from chainabs.deploy import Manifest, deploy_core
from chainabs.merkle import keccak256
from chainabs.waterfall import DealParams, PeriodReport, TrancheSpec

EXAMPLE = DealParams(
    tranches=(TrancheSpec("Senior A", "ABS-A", 800_000, 400), TrancheSpec("Mezzanine B", "ABS-B", 120_000, 800),
              TrancheSpec("Equity C", "ABS-C", 80_000, 0)),
    servicer_fee_bps=100, reserve_target_bps=100, initial_reserve=10_000, default_trigger_bps=500,
)
PERIOD_1 = PeriodReport(interest=15_000, principal=80_000, recoveries=0, defaults=5_000)
REGISTRY_BATCH = 400  # each investor also writes its word into the three tranche tokens
ALLOCATION_BATCH = 2_000


def _setup(chain: EmbeddedChain, core: Manifest, params: DealParams = EXAMPLE) -> d.DealHandle:
    admin, servicer, originator = chain.accounts[:3]
    pool = d.deploy_filled_pool(chain, manifest=core, outstanding=[params.initial_balance], originator=originator)
    roles = d.DealRoles(admin=admin, operator=admin, servicer=servicer, originator=originator,
                        fee_recipient=chain.accounts[9], compliance=admin, agent=admin)
    handle = d.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=roles)
    cash = handle.settlement
    for who in (admin, servicer, originator):
        chain.send(cash.functions.mint(who, 10**15), sender=core.deployer)
    return handle


def _far_future(chain: EmbeddedChain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"]) + 10 * 365 * 86_400


def bench_transfer() -> dict[str, Any]:
    chain = EmbeddedChain()
    core = deploy_core(chain)
    handle = _setup(chain, core)
    alice, bob = chain.accounts[3], chain.accounts[4]
    originator = handle.roles.originator
    d.add_investors(handle, investors=[originator, alice, bob], eligible_until=_far_future(chain))
    d.open_offering(handle)
    for who in (alice, bob):
        chain.send(handle.settlement.functions.mint(who, 10**12), sender=core.deployer)
        d.subscribe(handle, investor=who, tranche=0, units=300_000)
    d.close(handle)
    d.post_report(handle, report=PERIOD_1, loan_root=keccak256(b"period 1"), loan_count=1)
    unclaimed = [d.claimable(handle, holder=w)[0] for w in (alice, bob)]
    assert min(unclaimed) > 0, unclaimed
    d.transfer(handle, tranche=0, sender=alice, to=bob, units=1_000)  # not measured: same path
    tranche_gas = d.transfer(handle, tranche=0, sender=alice, to=bob, units=1_000).gas_used
    assert d.claimable(handle, holder=alice)[0] == unclaimed[0]  # entitlement stayed exact

    plain = chain.deploy("PlainERC20", 10**24, sender=alice)
    chain.send(plain.functions.transfer(bob, 1_000), sender=alice)  # bob becomes a holder
    plain_gas = chain.send(plain.functions.transfer(bob, 1_000), sender=alice).gas_used
    return {
        "bench": "transfer",
        "tranche_transfer_gas": tranche_gas,
        "plain_erc20_transfer_gas": plain_gas,
        "ratio": round(tranche_gas / plain_gas, 4),
        "target_ratio": 1.2,
    }


def _holders(tag: str, count: int) -> list[str]:
    from eth_utils import to_checksum_address

    return [to_checksum_address(keccak256(f"{tag}:{i}".encode())[:20]) for i in range(count)]


def _bulk(chain: EmbeddedChain, fn: Any, sender: str) -> int:
    """Send a setup transaction of the large deal: with the block's gas limit instead of the
    embedded chain's trial execution (which runs every transaction twice) and without decoding
    thousands of logs. A revert still raises. Returns the gas used."""
    return chain.send(fn, sender=sender, gas=chain.gas_limit, logs=False).gas_used


def _issued_deal(chain: EmbeddedChain, core: Manifest, holders: list[str]) -> d.DealHandle:
    """The worked example's deal, every unit of every tranche spread evenly over `holders`:
    registered in registry batches and placed by the operator's batch allocations (the same
    contract paths as chainabs.deal.add_investors / allocate, sent in bulk)."""
    handle = _setup(chain, core)
    roles = handle.roles
    until = _far_future(chain)
    investors = [roles.originator, *holders]
    for i in range(0, len(investors), REGISTRY_BATCH):
        chunk = investors[i:i + REGISTRY_BATCH]
        _bulk(chain, handle.registry.functions.setInvestors(chunk, [until] * len(chunk), [840] * len(chunk)),
              roles.compliance)
    d.open_offering(handle)
    total = handle.params.initial_balance
    chain.send(handle.settlement.functions.approve(handle.deal.address, total), sender=roles.operator)
    n = len(holders)
    for k, spec in enumerate(handle.params.tranches):
        each, rest = divmod(spec.face, n)
        units = [each + (1 if i < rest else 0) for i in range(n)]
        for i in range(0, n, ALLOCATION_BATCH):
            batch = slice(i, i + ALLOCATION_BATCH)
            _bulk(chain, handle.deal.functions.allocate(k, holders[batch], units[batch]), roles.operator)
    d.close(handle)
    for k, token in enumerate(handle.tokens):  # every unit placed, none left to the originator
        assert chain.call(token.functions.balanceOf(roles.originator)) == 0, k
    return handle


def _report_gas(handle: d.DealHandle, core: Manifest) -> int:
    chain = handle.chain
    servicer = handle.roles.servicer
    # both deals pay the fee to the same recipient: give it a balance first, so that neither
    # measurement pays for creating its settlement balance (20,000 gas) and the other not
    fee_to = handle.roles.fee_recipient
    if chain.call(handle.settlement.functions.balanceOf(fee_to)) == 0:
        chain.send(handle.settlement.functions.mint(fee_to, 1), sender=core.deployer)
    total = PERIOD_1.interest + PERIOD_1.principal + PERIOD_1.recoveries
    chain.send(handle.settlement.functions.approve(handle.deal.address, total), sender=servicer)
    b1 = handle.params.initial_balance - PERIOD_1.principal - PERIOD_1.defaults
    fn = handle.deal.functions.postReport(1, PERIOD_1.interest, PERIOD_1.principal, PERIOD_1.recoveries,
                                          PERIOD_1.defaults, b1, keccak256(b"period 1"), 1)
    return chain.send(fn, sender=servicer).gas_used


def bench_distribute(holders_small: int = 10, holders_large: int = 10_000) -> dict[str, Any]:
    started = time.perf_counter()
    chain = EmbeddedChain()
    core = deploy_core(chain)
    small = _issued_deal(chain, core, _holders("small", holders_small))
    large_holders = _holders("large", holders_large)
    large = _issued_deal(chain, core, large_holders)
    setup_s = time.perf_counter() - started
    gas_small, gas_large = _report_gas(small, core), _report_gas(large, core)

    # a holder of one tranche whose wallet already holds some cash, claiming as chainabs does
    # (only the tranches with something owed), then everything else measured for the record
    h = large_holders[0]
    senior = large_holders[1]
    fresh = large_holders[2]
    for who in (h, senior):
        chain.send(large.settlement.functions.mint(who, 1), sender=core.deployer)
    owed = d.claimable(large, holder=h)
    # the holders are plain addresses: their claims are sent by the paying agent (the operator, a[0])
    claim_one = chain.send(large.deal.functions.claimTranches(h, 1), sender=chain.accounts[0]).gas_used
    claim_all = chain.send(large.deal.functions.claimFor(senior), sender=chain.accounts[0]).gas_used
    claim_fresh = chain.send(large.deal.functions.claimTranches(fresh, 1), sender=chain.accounts[0]).gas_used
    return {
        "bench": "distribute",
        "holders_small": holders_small,
        "holders_large": holders_large,
        "tranches": len(EXAMPLE.tranches),
        "report_gas_small": gas_small,
        "report_gas_large": gas_large,
        "ratio": round(gas_large / gas_small, 4),
        "target_ratio": 1.01,
        "claim_gas": claim_one,
        "claim_target": 60_000,
        "claim_detail": {
            "owed_per_tranche": owed,
            "one_tranche_masked": claim_one,
            "all_tranches_claimFor": claim_all,
            "one_tranche_wallet_without_cash": claim_fresh,
        },
        "setup_seconds": round(setup_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(bench_transfer()))
    print(json.dumps(bench_distribute(holders_large=int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
