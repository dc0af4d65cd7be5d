"""The DCC: the device register now; routing, the ACB, anomaly detection and audit follow."""
