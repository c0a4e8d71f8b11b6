"""Risk analytics on the reference model: loan-level projection (pool), the projection run
through the v2 waterfall with each tranche's WAL, window, loss and IRR (run), inputs from a
deal file and tape (inputs), and breakeven default rates (breakeven)."""
