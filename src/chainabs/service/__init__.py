"""The service layer: every operation on pools and deals, behind both doors (the `chainabs`
command and the API's operator routes) and the demo.

Each operation checks its own preconditions (phase, cash, eligibility, input against the
chain's state) and raises a family of chainabs.errors, which each door maps once (the CLI's
top level, the API's exception handler); the doors parse input, call one function here and
print or serialise what it returns. Functions take the Context first and the rest by keyword;
a deal is named by its pool's name (None: the only pool of the data dir).

    deals.py    open a deal; create it; investors; subscribe, close; transfer, trade, claim; fund
    periods.py  a servicer's report with its loan-level tape; simulated periods; a period read back
    pools.py    a pool from a tape file or an upload
    purchases.py  a purchase tape checked against eligibility and concentration, before any mint
"""

from chainabs.service.deals import (
    FAR_FUTURE,
    InvestorsChanged,
    TrancheMove,
    add_investors,
    check_settlement_token,
    claim,
    close_offering,
    create_deal,
    freeze_investors,
    fund,
    open_deal,
    subscribe,
    trade,
    tranche_index,
    transfer,
)
from chainabs.service.periods import (
    PostedPeriod,
    TapeSource,
    deal_cutoff_day,
    loan_level_tape,
    loans_from_rows,
    post_period,
    read_period,
    report_period,
    simulate,
)
from chainabs.service.pools import CreatedPool, check_tape, create_pool
from chainabs.service.purchases import Concentration, PurchaseCheck, check_purchase

__all__ = [
    "FAR_FUTURE", "Concentration", "CreatedPool", "InvestorsChanged", "PostedPeriod", "PurchaseCheck", "TapeSource",
    "TrancheMove", "add_investors", "check_purchase", "check_settlement_token", "check_tape", "claim",
    "close_offering", "create_deal", "create_pool", "deal_cutoff_day", "freeze_investors", "fund", "loan_level_tape",
    "loans_from_rows", "open_deal", "post_period", "read_period", "report_period", "simulate", "subscribe", "trade",
    "tranche_index", "transfer",
]
