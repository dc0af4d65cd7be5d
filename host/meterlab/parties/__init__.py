"""What the parties (suppliers, the DCC's roles, network operators, third parties) send to meters."""
