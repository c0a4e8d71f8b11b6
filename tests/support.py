"""What several test modules build the same way: a deal with its offering open on the session
chain, TrancheToken's entitlement rule recomputed off chain, a small demo deal of its own, a
generated tape and a valid tape row."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from chainabs import deal as D
from chainabs.chain import EmbeddedChain, RawCall
from chainabs.context import Context, open_context
from chainabs.demo import run_demo
from chainabs.deploy import Manifest
from chainabs.pool import PoolFiles
from chainabs.service import open_deal
from chainabs.store import Store
from chainabs.tapegen import write_tape
from chainabs.waterfall import DealParams

M = D.MAGNITUDE
TEN_YEARS = 10 * 365 * 86_400
# one valid tape row (TAPE.md), as the cells of a CSV line
GOOD_ROW = {
    "loan_id": "L1", "borrower_ref": "B1", "product": "cash", "currency": "EUR",
    "principal": "1000.00", "outstanding_principal": "800.00", "annual_rate": "0.1825",
    "origination_date": "2025-01-15", "maturity_date": "2027-01-15", "term_months": "24",
    "repayment_type": "amortizing", "status": "current", "funded_share": "",
    "credit_score": "700", "region": "DE-BY",
}


@dataclass
class DealEnv:
    """A deal whose offering is open, every role on its own account (the three admin seats'
    proposers too: `roles.admin`, `roles.token_admin`, `roles.registry_admin`), and five more
    wallets."""

    chain: EmbeddedChain
    core: Manifest
    h: D.DealHandle
    alice: str
    bob: str
    carol: str
    dave: str  # a fresh signer, registered, holds nothing at closing
    stranger: str  # a fresh signer, never registered, holds no role
    until: int  # when the registered investors' eligibility expires

    @property
    def roles(self) -> D.DealRoles:
        return self.h.roles

    def now(self) -> int:
        return int(self.chain.w3.eth.get_block("latest")["timestamp"])


def open_offering(chain: EmbeddedChain, core: Manifest, *, params: DealParams, outstanding: list[int],
                  subscriptions: Iterable[tuple[str, int, int]]) -> DealEnv:
    """Deploy a pool of `outstanding` balances and a deal of `params` over it, register the
    originator, alice, bob, carol and dave, give every wallet 10^12 of cash, open the offering
    and place `subscriptions` as (wallet name, tranche, units)."""
    a = chain.accounts
    extra = [Account.create() for _ in range(4)]
    for acct in extra:
        chain.add_signer(acct)
        chain.send(RawCall(to=acct.address, data=b""), sender=a[0], value=10**21, gas=21_000)
    roles = D.DealRoles(admin=a[0], operator=a[1], servicer=a[2], originator=a[3], fee_recipient=a[4],
                        compliance=a[5], agent=a[6], token_admin=extra[2].address, registry_admin=extra[3].address)
    pool = D.deploy_filled_pool(chain, manifest=core, outstanding=outstanding, originator=roles.originator)
    h = D.deploy_deal(chain, manifest=core, pool=pool.address, params=params, roles=roles)
    wallets = {"alice": a[7], "bob": a[8], "carol": a[9], "dave": extra[0].address, "stranger": extra[1].address}
    for who in (roles.operator, roles.servicer, roles.originator, *wallets.values()):
        chain.send(h.settlement.functions.mint(who, 10**12), sender=core.deployer)
    until = int(chain.w3.eth.get_block("latest")["timestamp"]) + TEN_YEARS
    registered = [roles.originator] + [wallets[n] for n in ("alice", "bob", "carol", "dave")]
    D.add_investors(h, investors=registered, eligible_until=until)
    D.open_offering(h)
    for name, tranche, units in subscriptions:
        D.subscribe(h, investor=wallets[name], tranche=tranche, units=units)
    return DealEnv(chain=chain, core=core, h=h, until=until, **wallets)


class Entitlements:
    """TrancheToken's accounting recomputed off chain: each credit adds
    floor((cash * M + carry) / supply) to points per unit and carries the remainder; a holder's
    entitlement (in 1/M base units) is the sum over credits of the points added times the units
    it held then; a claim pays floor(entitlement / M) and keeps the fraction."""

    def __init__(self, n: int, holders: Iterable[str] = ()) -> None:
        holders = list(holders)
        self.units: list[Counter[str]] = [Counter(dict.fromkeys(holders, 0)) for _ in range(n)]
        self.ent: list[Counter[str]] = [Counter(dict.fromkeys(holders, 0)) for _ in range(n)]
        self.points = [0] * n
        self.carry = [0] * n
        self.paid = [0] * n

    def move(self, k: int, src: str | None, dst: str, units: int, *, forced: bool = False) -> int:
        """`units` of tranche k from src (None: minted) to dst. A forced transfer also moves
        src's unclaimed entitlement in proportion to the units (floor); returns what it moved."""
        moved = 0
        if src is not None:
            if forced and units and src != dst:
                moved = self.ent[k][src] * units // self.units[k][src]
                self.ent[k][src] -= moved
                self.ent[k][dst] += moved
            self.units[k][src] -= units
        self.units[k][dst] += units
        return moved

    def credit(self, k: int, cash: int) -> None:
        """TrancheToken.distribute of `cash` to tranche k's holders."""
        if cash == 0:
            return
        step, self.carry[k] = divmod(cash * M + self.carry[k], sum(self.units[k].values()))
        self.points[k] += step
        self.paid[k] += cash
        for who, held in self.units[k].items():
            self.ent[k][who] += step * held

    def claimable(self, k: int, who: str) -> int:
        return self.ent[k][who] // M

    def claim(self, k: int, who: str) -> int:
        """What `who` is paid for tranche k; the fraction below one base unit stays."""
        amount = self.claimable(k, who)
        self.ent[k][who] -= amount * M
        return amount


@dataclass
class DemoDeal:
    data: Path
    ctx: Context
    handle: D.DealHandle
    files: PoolFiles
    store: Store


def demo_deal(tmp_path_factory: pytest.TempPathFactory, name: str, *, loans: int, periods: int = 2,
              seed: int = 5) -> DemoDeal:
    """The demo's deal, small, on an embedded chain of its own in a fresh data dir, with its index
    store open (not yet synced). Close `.store` when done."""
    data = tmp_path_factory.mktemp(name)
    run_demo(data_dir=data, loans=loans, periods=periods, seed=seed, say=lambda _: None)
    ctx = open_context(data_dir=data, create=False)
    handle, files = open_deal(ctx)
    return DemoDeal(data, ctx, handle, files, Store.open(data, chain_id=ctx.chain.chain_id))


def csv_bytes(rows: list[dict[str, str]], columns: list[str] | tuple[str, ...]) -> bytes:
    """A CSV tape of `rows` (cells by column name, missing ones empty) under `columns`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([r.get(c, "") for c in columns])
    return out.getvalue().encode()


def tape_file(tmp_path_factory: pytest.TempPathFactory, loans: int, seed: int) -> Path:
    """A generated CSV tape of `loans` loans in a fresh folder."""
    path = tmp_path_factory.mktemp("tape") / "tape.csv"
    write_tape(path, loans, seed, "csv")
    return path


# -- chainabs processes over one data dir ------------------------------------------------------------

def chainabs_env(**extra: str) -> dict[str, str]:
    """This environment less CHAINABS_* settings, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CHAINABS_")}, **extra}


def cli(data: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    """`chainabs --data-dir DATA *args` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), *args],
                          capture_output=True, text=True, timeout=timeout, env=chainabs_env(**env), check=False)


class Process:
    """`chainabs --data-dir DATA *args` running in the background (serve or node), its output in `log`."""

    def __init__(self, data: Path, log: Path, *args: str, **env: str) -> None:
        self.log = log
        with log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "chainabs.cli", "--data-dir", str(data), *args],
                                         stdout=out, stderr=subprocess.STDOUT, env=chainabs_env(**env))

    def wait_for(self, url: str, method: str = "eth_blockNumber", timeout: float = 120) -> Any:
        """Poll the JSON-RPC endpoint at `url` until it answers `method`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []}, timeout=5)
                if answer.status_code == 200 and "result" in answer.json():
                    return answer.json()["result"]
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{url} did not answer within {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
