"""The threat model, run (`meterlab attack list`, `meterlab attack run NAME|all`): each attack the design is
argued against, executed end to end on an estate of virtual boards or, for large numbers, of meters in
this process, with its outcome counted and checked against the property it tests (scenarios.SCENARIOS)."""
