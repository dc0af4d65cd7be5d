"""Power budget (design.md, "Power budget"): the boards' power profiles, what each operation costs, and
how long a battery lasts. The board's own side is meterfw.ledger."""
