"""The names of the authorisation table's commands (meterfw.authorisation), for the docs and the host: kept
apart so a board, which never prints them, does not hold them in RAM."""

from meterfw import authorisation as _a

NAMES = {
    _a.TOP_UP: "CS01a apply prepayment top up",
    _a.TARIFF: "ECS01a update import tariff",
    _a.CREDIT_MODE: "ECS02 set payment mode to credit",
    _a.PREPAYMENT_MODE: "ECS03 set payment mode to prepayment",
    _a.EMERGENCY_CREDIT: "ECS09 activate emergency credit",
    _a.READ_IMPORT_REGISTERS: "ECS17b read import energy registers",
    _a.READ_GAS_REGISTER: "GCS13a read GSME consumption register",
    _a.SUPPLY_CONNECT: "ECS42 supply connect (close load switch)",
    _a.SUPPLY_DISCONNECT: "ECS43 supply disconnect (open load switch)",
    _a.VALVE_CLOSE: "GCS32 close gas valve",
    _a.READ_GPF: "GCS61 read gas consumption from the GPF's mirror",
    _a.RESET_BALANCE: "ECS04b reset meter balance",
    _a.CREDENTIALS_SUPPLIER_BY_SUPPLIER: "CS02b credentials supplierBySupplier",
    _a.CREDENTIALS_NO_BY_NO: "CS02b credentials networkOperatorByNetworkOperator",
    _a.CREDENTIALS_WAN_BY_WAN: "CS02b credentials WANProviderByWANProvider",
    _a.CREDENTIALS_TRANSCOS_BY_TRANSCOS: "CS02b credentials transCoSByTransCoS",
    _a.CREDENTIALS_SUPPLIER_BY_TRANSCOS: "CS02b credentials supplierByTransCoS",
    _a.CREDENTIALS_ANY_BY_RECOVERY: "CS02b credentials anyExceptAbnormalRootByRecovery",
}


def rows():
    """The table for the docs: a list of (code, name, role names, signed, sensitive, device types), by code.
    (It reads the table itself, authorisation._TABLE: the one place that says who may do what.)"""
    from meterfw import roles

    out = []
    for code in sorted(_a._TABLE):
        entry = _a._TABLE[code]
        out.append((code, NAMES[code], tuple(roles.NAMES[r] for r in entry[_a.ROLES]), entry[_a.SIGNED],
                    entry[_a.SENSITIVE], entry[_a.DEVICES]))
    return out
