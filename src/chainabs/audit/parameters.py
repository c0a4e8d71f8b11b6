"""The parameters check: the Deal was deployed with the terms its deal record publishes.

The Deal's constructor arguments are decoded from the transaction that emitted DealCreated and
compared with the deal record's terms and the contract's views.
"""

from __future__ import annotations

from dataclasses import fields

from eth_abi import decode as abi_decode
from eth_typing import HexStr
from eth_utils import collapse_if_tuple

from chainabs import deal as deals
from chainabs.audit.events import DealEvents
from chainabs.audit.report import Check
from chainabs.build import load_artifact
from chainabs.chain import Chain
from chainabs.errors import InvalidInput
from chainabs.pool import PoolFiles
from chainabs.waterfall import DealParams, TrancheSpec


def published_terms(files: PoolFiles) -> DealParams | None:
    """The terms the deal record publishes (None when the pool has no deal record)."""
    data = files.dir.data_dir
    try:
        record = data.read_deal(files.dir.slug)
    except InvalidInput as exc:
        raise InvalidInput(f"the deal's published parameters are unreadable: {exc}") from None
    return None if record is None else record.params


def constructor_terms(chain: Chain, tx_hash: str) -> DealParams | None:
    """The Deal's constructor arguments, decoded from its deployment transaction; None unless
    that transaction is a creation with chainabs' Deal artifact as its code."""
    data = bytes(chain.w3.eth.get_transaction(HexStr(tx_hash))["input"])
    artifact = load_artifact("Deal")
    code = bytes.fromhex(artifact["bytecode"].removeprefix("0x"))
    if not data.startswith(code):
        return None
    ctor = next(item for item in artifact["abi"] if item["type"] == "constructor")
    try:
        args = abi_decode([collapse_if_tuple(p) for p in ctor["inputs"]], data[len(code):])
        tranches, parameters = args[3], args[4]  # (settlement, pool, registry, tranches, parameters, ...)
    except Exception:  # malformed arguments: not a deployment we can read
        return None
    return DealParams(tranches=tuple(TrancheSpec(name=n, symbol=s, face=int(f), coupon_bps=int(c))
                                     for n, s, f, c in tranches),
                      servicer_fee_bps=int(parameters[0]), reserve_target_bps=int(parameters[1]),
                      initial_reserve=int(parameters[2]), default_trigger_bps=int(parameters[3]))


def _terms_diff(a: DealParams, b: DealParams) -> list[str]:
    out = [f.name for f in fields(DealParams) if f.name != "tranches" and getattr(a, f.name) != getattr(b, f.name)]
    if len(a.tranches) != len(b.tranches):
        return [*out, "tranches"]
    for k, (x, y) in enumerate(zip(a.tranches, b.tranches, strict=True)):
        out += [f"tranches[{k}].{f.name}" for f in fields(TrancheSpec) if getattr(x, f.name) != getattr(y, f.name)]
    return out


def check_parameters(handle: deals.DealHandle, ev: DealEvents, terms: DealParams | None) -> tuple[Check, DealParams]:
    """The Deal's constructor arguments against the deal file and the contract's views; returns
    the terms the model runs on (the published ones, or the constructor's without a deal file)."""
    created = ev.named("DealCreated", ev.deal)
    problems: list[str] = []
    if len(created) != 1:
        name = "parameters: the Deal was deployed with the published terms"
        return Check(name, False, {"DealCreated events": len(created)}), terms or handle.params
    dc = created[0].args
    decoded = constructor_terms(handle.chain, created[0].tx_hash)
    if decoded is None:
        problems.append("the Deal's creation transaction is not chainabs' Deal code: its views stand in")
    onchain = decoded or handle.params
    model_terms = terms or onchain
    problems += [f"deal file {d}" for d in _terms_diff(model_terms, onchain)]
    problems += [f"contract view {d}" for d in _terms_diff(handle.params, onchain)]
    if [str(t).lower() for t in dc["tokens"]] != ev.tokens:
        problems.append("DealCreated tokens differ from the deal file's TrancheTokens")
    if str(dc["loanPool"]).lower() != ev.pool or str(dc["registry"]).lower() != ev.registry:
        problems.append("DealCreated pool or registry differs from the deal file")
    committed = ev.named("TapeCommitted", ev.pool)
    pool_units = int(committed[-1].args["outstandingUnits"]) if committed else None
    if int(dc["initialBalance"]) != onchain.initial_balance or pool_units != onchain.initial_balance:
        problems.append("faces, DealCreated.initialBalance and the pool's committed units disagree")
    figures = {"tranches": [f"{t.symbol} face {t.face} coupon {t.coupon_bps}" for t in onchain.tranches],
               "servicer_fee_bps": onchain.servicer_fee_bps, "reserve_target_bps": onchain.reserve_target_bps,
               "initial_reserve": onchain.initial_reserve, "default_trigger_bps": onchain.default_trigger_bps,
               "initial_balance": int(dc["initialBalance"]), "published": terms is not None,
               "differences": problems}
    return Check("parameters: the Deal was deployed with the published terms", not problems, figures), model_terms
