"""Reading a deal's events straight from the chain.

The events come from `eth_getLogs` (the indexer's log sources and decoders, not its SQLite
file), for the deal's contracts (Deal, InvestorRegistry, TrancheExchange, every TrancheToken),
its LoanPool, the settlement token's transfers into and out of the deal and the loan token's
commitments to the pool. Every contract view the checks read is read at `DealEvents.head`, the
block of the last log, so the two agree.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chainabs import deal as deals
from chainabs.chain import LogSource, RawLog
from chainabs.chain.abi import event_specs
from chainabs.errors import ChainabsError
from chainabs.indexer import DEFAULT_RANGE
from chainabs.pool import PoolFiles
from chainabs.waterfall import PeriodResult


@dataclass(frozen=True)
class ChainEvent:
    """One log, decoded as the indexer decodes it."""

    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str
    address: str               # lower-case
    name: str
    args: dict[str, Any]

    def canonical(self) -> tuple[Any, ...]:
        """What the index must hold for this event, independent of JSON formatting (the block
        hash is compared on its own: see check_index)."""
        return (self.tx_hash, self.log_index, self.block_number, self.name,
                json.dumps(self.args, sort_keys=True, separators=(",", ":")))


def get_logs(source: LogSource, start: int, end: int, addresses: Sequence[str], *,
             max_range: int = DEFAULT_RANGE) -> list[RawLog]:
    """Every log of `addresses` in blocks [start, end], paged; a refused page is halved."""
    out: list[RawLog] = []
    size = max_range
    while start <= end:
        stop = min(end, start + size - 1)
        try:
            out.extend(source.get_logs(start, stop, addresses))
        except ChainabsError:
            if stop == start:
                raise
            size = max(1, (stop - start + 1) // 2)
            continue
        start = stop + 1
    return out


def decode_logs(logs: Iterable[RawLog], artifacts: Mapping[str, str],
                keep: Callable[[RawLog], bool] | None = None) -> list[ChainEvent]:
    """Decode as the indexer does (an undecodable log becomes "Unknown" with its raw topics)."""
    out = []
    for log in logs:
        if keep is not None and not keep(log):
            continue
        number, block_hash, tx_hash, index, address, topics, data = log
        spec = event_specs(artifacts[address]).get(topics[0]) if topics else None
        try:
            if spec is None:
                raise ValueError("unknown event")
            name, args = spec.name, spec.decode(topics, data)
        except Exception:  # kept raw, as the index keeps it
            name, args = "Unknown", {"topics": ["0x" + t.hex() for t in topics], "data": "0x" + data.hex()}
        out.append(ChainEvent(number, block_hash, index, tx_hash, address, name, args))
    out.sort(key=lambda e: (e.block_number, e.log_index))
    return out


@dataclass
class DealEvents:
    """A deal's events up to `head`, and which contract is which."""

    head: int
    start: int
    deal: str
    pool: str
    registry: str
    exchange: str
    settlement: str
    loan_token: str
    tokens: list[str]
    events: list[ChainEvent]            # every event of the deal's contracts and the pool
    cash_moves: list[ChainEvent]        # settlement Transfers from or to the deal
    commitments: list[ChainEvent]       # LoansCommitted to the pool and the mint Transfers before each
    seconds: float = 0.0

    def named(self, name: str, address: str | None = None) -> list[ChainEvent]:
        return [e for e in self.events if e.name == name and (address is None or e.address == address)]

    def artifacts(self) -> dict[str, str]:
        out = {self.deal: "Deal", self.pool: "LoanPool", self.registry: "InvestorRegistry",
               self.exchange: "TrancheExchange", self.settlement: "SettlementToken", self.loan_token: "LoanToken"}
        out.update(dict.fromkeys(self.tokens, "TrancheToken"))
        return out


def read_deal_events(handle: deals.DealHandle, files: PoolFiles, *, head: int | None = None,
                     max_range: int = DEFAULT_RANGE) -> DealEvents:
    """Every event of the deal from its deployment block to `head` (default: the chain's)."""
    started = time.perf_counter()
    chain = handle.chain
    source = chain.log_source()
    head = source.head() if head is None else head
    start = int(files.record.deployment_block or 0)
    pool = handle.pool.lower()
    deal = handle.deal.address.lower()
    tokens = [t.address.lower() for t in handle.tokens]
    pool_contract = chain.contract("LoanPool", handle.pool)
    loan_token = str(chain.call(pool_contract.functions.loanToken(), block=head)).lower()
    settlement = handle.settlement.address.lower()
    artifacts = {deal: "Deal", pool: "LoanPool", handle.registry.address.lower(): "InvestorRegistry",
                 handle.exchange.address.lower(): "TrancheExchange", **dict.fromkeys(tokens, "TrancheToken")}
    events = decode_logs(get_logs(source, start, head, list(artifacts), max_range=max_range), artifacts)
    created = [e for e in events if e.name == "DealCreated" and e.address == deal]
    if created:  # the settlement token the Deal was built with, not the one the handle assumes
        settlement = str(created[0].args["settlement"]).lower()
    deal_topic = bytes(12) + bytes.fromhex(deal[2:])
    transfer_topic = next(t for t, s in event_specs("SettlementToken").items() if s.name == "Transfer")
    moves = decode_logs(
        get_logs(source, start, head, [settlement], max_range=max_range), {settlement: "SettlementToken"},
        keep=lambda log: len(log[5]) == 3 and log[5][0] == transfer_topic and deal_topic in (log[5][1], log[5][2]))
    token_specs = {s.name: t for t, s in event_specs("LoanToken").items()}
    committed_topic, mint_topic = token_specs["LoansCommitted"], token_specs["Transfer"]
    pool_topic = bytes(12) + bytes.fromhex(pool[2:])
    filled = [e.block_number for e in events if e.name == "PoolFilled" and e.address == pool]
    commitments = decode_logs(
        get_logs(source, start, filled[0] if filled else head, [loan_token], max_range=max_range),
        {loan_token: "LoanToken"},
        keep=lambda log: (len(log[5]) == 2 and log[5][0] == committed_topic and log[5][1] == pool_topic)
        or (len(log[5]) == 4 and log[5][0] == mint_topic and log[5][1] == bytes(32) and log[5][2] == pool_topic))
    return DealEvents(head=head, start=start, deal=deal, pool=pool, registry=handle.registry.address.lower(),
                      exchange=handle.exchange.address.lower(), settlement=settlement, loan_token=loan_token,
                      tokens=tokens, events=events, cash_moves=moves, commitments=commitments,
                      seconds=time.perf_counter() - started)


def chain_periods(ev: DealEvents) -> list[tuple[ChainEvent, PeriodResult]]:
    """Every PeriodReported of the Deal, with the period's figures as the model's PeriodResult."""
    return [(e, deals._period_result(e.args["figures"], e.args["tranches"]))
            for e in ev.named("PeriodReported", ev.deal)]


def committed_loans(ev: DealEvents) -> list[tuple[int, bytes]]:
    """(token id, loan hash) of every loan committed to the pool, in commitment order.

    A `LoansCommitted` event carries the batch's loan hashes; the token ids are in the mint
    Transfers the same transaction emitted before it, in the same order. A hash without its
    Transfer pairs with token id -1, which matches no loan, so the loan check fails on it."""
    out: list[tuple[int, bytes]] = []
    minted: dict[str, list[int]] = {}
    for e in ev.commitments:
        if e.name == "Transfer":
            minted.setdefault(e.tx_hash, []).append(int(e.args["tokenId"]))
        elif e.name == "LoansCommitted":
            ids = minted.pop(e.tx_hash, [])
            hashes = [bytes.fromhex(str(h)[2:]) for h in e.args["loanHashes"]]
            ids = ids[-len(hashes):] if len(ids) >= len(hashes) else ids + [-1] * (len(hashes) - len(ids))
            out.extend(zip(ids, hashes, strict=True))
    return out
