"""The loan checks, against the commitments and roots on chain.

- loans: the published loan rows hash to the committed loan hashes and the pool's root.
- periods: each period's loan-level tape has the period's on-chain root and pool balance.
- tape (given the loan tape and the pool's salt): every loan commitment and the pool's root
  recomputed from scratch.
"""

from __future__ import annotations

from pathlib import Path

from chainabs import deal as deals
from chainabs import merkle
from chainabs.audit.events import ChainEvent, DealEvents, committed_loans
from chainabs.audit.report import Check, first
from chainabs.datadir import period_root
from chainabs.errors import InvalidInput
from chainabs.pool import PoolFiles
from chainabs.waterfall import PeriodResult


def pool_root(handle: deals.DealHandle, ev: DealEvents) -> tuple[str | None, str]:
    """(root of TapeCommitted, loanRoot() now)."""
    committed = ev.named("TapeCommitted", ev.pool)
    pool = handle.chain.contract("LoanPool", handle.pool)
    now = "0x" + bytes(handle.chain.call(pool.functions.loanRoot(), block=ev.head)).hex()
    return (str(committed[-1].args["root"]) if committed else None), now


def check_loans(handle: deals.DealHandle, files: PoolFiles, ev: DealEvents) -> Check:
    hashes = [row.loan_hash() for row in files.rows]
    root = "0x" + merkle.MerkleTree.from_leaves([merkle.leaf_from_loan_hash(h) for h in hashes]).root.hex()
    event_root, onchain_root = pool_root(handle, ev)
    committed = committed_loans(ev)
    ids = [merkle.token_id(ev.pool, row.loan_id) for row in files.rows]
    same = committed == [(ids[i], hashes[i]) for i in files.mint_order()]  # minted by ascending leaf
    return Check("loans: Merkle root of the published loan rows equals the pool's root",
                 root == event_root == onchain_root and same,
                 {"loans": len(hashes), "root": root, "TapeCommitted root": event_root, "loanRoot()": onchain_root,
                  "LoansCommitted": len(committed), "rows equal the committed hashes": same})


def check_period_tapes(files: PoolFiles, periods: list[tuple[ChainEvent, PeriodResult]]) -> Check:
    onchain = {r.period: (str(e.args["figures"]["loan_root"]), r.pool_balance_end) for e, r in periods}
    bad: list[str] = []
    paths = files.dir.period_files()
    for path in paths:
        n = int(path.stem) if path.stem.isdigit() else -1
        if n not in onchain:
            bad.append(f"{path.stem} (no such period on chain)")
            continue
        if path != files.dir.period_path(n):
            bad.append(f"{path.stem} (misnamed: period {n}'s tape is {files.dir.period_path(n).name})")
            continue
        tape = files.dir.read_period(n)
        if tape is None:
            bad.append(f"{path.stem} (unreadable)")
            continue
        root = "0x" + period_root(files.rows, tape.statuses, tape.outstanding).hex()
        if root != tape.root or root != onchain[n][0]:
            bad.append(f"{path.stem} (root)")
        if sum(tape.outstanding) != onchain[n][1]:
            bad.append(f"{path.stem} (balance)")
    return Check("periods: each loan-level tape matches its period's on-chain root and pool balance", not bad,
                 {"tapes": len(paths), "periods on chain": len(periods), "inconsistent": first(bad)})


def read_salt(path: str | Path) -> bytes:
    """A pool salt file: 64 hex digits (32 bytes). The salt is never shown."""
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise InvalidInput(f"cannot read the salt file {path}: {exc.strerror or exc}") from None
    try:
        salt = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        salt = b""
    if len(salt) != 32:
        raise InvalidInput(f"{path} does not hold a pool salt (64 hex digits)")
    return salt


def check_tape(handle: deals.DealHandle, files: PoolFiles, ev: DealEvents, tape_path: str | Path,
               salt: bytes) -> Check:
    """Recompute every committed loan's hash from the tape and salt, and the pool's root."""
    from chainabs.tape import read_tape

    tape = read_tape(tape_path, decimals=files.record.decimals)
    by_id = {merkle.token_id(ev.pool, loan.loan_id): (loan, h) for loan, (h, _) in
             zip(tape.loans, merkle.commitments(tape.loans, salt), strict=True)}
    committed = committed_loans(ev)
    missing = [tid for tid, _ in committed if tid not in by_id]
    differ = [by_id[tid][0].loan_id for tid, h in committed if tid in by_id and by_id[tid][1] != h]
    leaves = [merkle.leaf_from_loan_hash(by_id[tid][1]) for tid, _ in committed if tid in by_id]
    root = "0x" + merkle.MerkleTree.from_leaves(leaves).root.hex() if leaves else None
    event_root, onchain_root = pool_root(handle, ev)
    tc = ev.named("TapeCommitted", ev.pool)
    loans = [by_id[tid][0] for tid, _ in committed if tid in by_id]
    totals = (len(committed), sum(x.outstanding_units for x in loans), sum(x.principal_units for x in loans))
    expected = ((int(tc[-1].args["loanCount"]), int(tc[-1].args["outstandingUnits"]),
                 int(tc[-1].args["principalUnits"])) if tc else None)
    ok = not missing and not differ and root == event_root == onchain_root and totals == expected
    return Check("tape: the tape and salt recompute every loan commitment and the pool's root", ok,
                 {"tape loans": len(tape.loans), "committed on chain": len(committed),
                  "not in the tape": len(missing), "hash differs": len(differ), "first differing": first(differ),
                  "root": root, "TapeCommitted root": event_root, "loanRoot()": onchain_root,
                  "count, outstanding, principal": list(totals), "on chain": list(expected) if expected else None})
