"""Who may send which command: the one authorisation table of the firmware (design.md, "Roles, trust
anchors, authorisation"). Sans-I/O, no state.

    message code -> (roles allowed to originate it, needs a signature, response is sensitive,
                     the device types that run it)

(The commands' names, and the table as rows for the docs, are in meterfw.authorisation_names: a board
never loads them.)

Every command reaches a device MAC'd by the DCC's access control broker (property 1), so the MAC is not
a column: it is always required (meterfw.pipeline checks it first). "Needs a signature" means the
command is critical (property 2): it must also carry an ECDSA signature by the originating role's DS
trust anchor. "Sensitive response" means the answer carries consumption or debt data and must be
encrypted to the requester (property 3). A code that is not in the table is refused to every role
(fail closed); so is a role that is not listed for a code (property 4). A meter refuses a code its type
does not run (an electricity tariff sent to a gas meter) before any signature work, which a battery
meter could not afford to spend on it.

Message codes are GBCS's, checked against the DCC's RTDS 4.5.0 (originator role and signed or not):

    0x0007 CS01a   Apply Prepayment Top Up to an ESME                    supplier; MAC only (adding
                   credit harms no one; the counter stops a replay)
    0x0019 ECS01a  Update Import Tariff (Primary Element)                supplier, signed
    0x001A ECS02   Set ESME Payment Mode to Credit                       supplier, signed
    0x001B ECS03   Set ESME Payment Mode to Prepayment                   supplier, signed
    0x0020 ECS09   Activate Emergency Credit Remotely on ESME            supplier, signed
    0x0027 ECS17b  Read ESME Energy Registers (Import Energy)            supplier, network operator, a
                   third party ("other", only with the consumer's consent: meterfw.consent); MAC only;
                   response sensitive (consumption)
    0x0074 GCS13a  Read GSME Consumption Register                        supplier, a third party (with the
                   consumer's consent); MAC only; response sensitive (consumption)
    0x004F ECS42   Remotely Close the Load Switch (supply connect)       supplier, signed
    0x0050 ECS43   Remotely Open the Load Switch (supply disconnect)     supplier, signed
    0x0081 GCS32   Remotely Close the Valve (gas supply off)             supplier, signed
    0x00A0 GCS61   Read Gas Daily Consumption Log                        supplier; MAC only; response
                   sensitive. Addressed to the GPF (the comms hub's identity: meterfw.gpf), answered from
                   its mirror of the gas meter's data with the mirror's age
    0x00B3 ECS04b  Reset Meter Balance                                   supplier, signed
    0x0102 CS02b   Update Security Credentials (supplierBySupplier)      supplier, signed
    0x0103 CS02b   Update Security Credentials (networkOperatorByNetworkOperator)   network operator, signed
    0x0105 CS02b   Update Security Credentials (WANProviderByWANProvider)           WAN provider, signed
    0x0106 CS02b   Update Security Credentials (transCoSByTransCoS)                 transitional CoS, signed
    0x0107 CS02b   Update Security Credentials (supplierByTransCoS)                 transitional CoS, signed
    0x0108 CS02b   Update Security Credentials (anyExceptAbnormalRootByRecovery)    recovery, signed

What the table cannot say is checked by meterfw.ownership, as the pipeline's validator, before anything
is written: which anchor a CS02b command may replace (supplierByTransCoS and supplierBySupplier only the
supplier's, each X-by-X code only its own role's, Recovery any but the root), that the new certificates
chain to the root with the right key usage and role, and the counter floor it sets. Left out of the
table on purpose (so refused until modelled): 0x0100/0x0101 (root replacement, by supplier or WAN
provider, under the root's own authorisation in the payload), 0x0104 (ACB by ACB, MAC only in RTDS),
0x0109 (any by contingency key), and the CS02b handover variants the DCC originates as the ACB.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import roles

# Fields of a rule (the tuple rule() returns).
ROLES = const(0)
SIGNED = const(1)
SENSITIVE = const(2)
DEVICES = const(3)

TOP_UP = const(0x0007)
TARIFF = const(0x0019)
CREDIT_MODE = const(0x001A)
PREPAYMENT_MODE = const(0x001B)
EMERGENCY_CREDIT = const(0x0020)
READ_IMPORT_REGISTERS = const(0x0027)
SUPPLY_CONNECT = const(0x004F)
SUPPLY_DISCONNECT = const(0x0050)
READ_GAS_REGISTER = const(0x0074)
VALVE_CLOSE = const(0x0081)
READ_GPF = const(0x00A0)
RESET_BALANCE = const(0x00B3)
CREDENTIALS_SUPPLIER_BY_SUPPLIER = const(0x0102)
CREDENTIALS_NO_BY_NO = const(0x0103)
CREDENTIALS_WAN_BY_WAN = const(0x0105)
CREDENTIALS_TRANSCOS_BY_TRANSCOS = const(0x0106)
CREDENTIALS_SUPPLIER_BY_TRANSCOS = const(0x0107)
CREDENTIALS_ANY_BY_RECOVERY = const(0x0108)

# The CS02b codes (meterfw.ownership replaces an anchor for each): a device loads that code only for them.
CREDENTIAL_CODES = (CREDENTIALS_SUPPLIER_BY_SUPPLIER, CREDENTIALS_NO_BY_NO, CREDENTIALS_WAN_BY_WAN,
                    CREDENTIALS_TRANSCOS_BY_TRANSCOS, CREDENTIALS_SUPPLIER_BY_TRANSCOS, CREDENTIALS_ANY_BY_RECOVERY)

_S = (roles.SUPPLIER,)
_E = ("esme",)
_G = ("gsme",)
_H = ("chf",)  # the comms hub: its GPF answers for the sleeping gas meter
_ALL = ("esme", "gsme", "chf")  # credential commands: every device holds anchors

# THE table. Keep it the only place that says who may do what.
_TABLE = {
    TOP_UP: (_S, False, False, _E),
    TARIFF: (_S, True, False, _E),
    CREDIT_MODE: (_S, True, False, _E),
    PREPAYMENT_MODE: (_S, True, False, _E),
    EMERGENCY_CREDIT: (_S, True, False, _E),
    READ_IMPORT_REGISTERS: ((roles.SUPPLIER, roles.NETWORK_OPERATOR, roles.OTHER), False, True, _E),
    READ_GAS_REGISTER: ((roles.SUPPLIER, roles.OTHER), False, True, _G),
    SUPPLY_CONNECT: (_S, True, False, _E),
    SUPPLY_DISCONNECT: (_S, True, False, _E),
    VALVE_CLOSE: (_S, True, False, _G),
    READ_GPF: (_S, False, True, _H),
    RESET_BALANCE: (_S, True, False, _E),
    CREDENTIALS_SUPPLIER_BY_SUPPLIER: (_S, True, False, _ALL),
    CREDENTIALS_NO_BY_NO: ((roles.NETWORK_OPERATOR,), True, False, _ALL),
    CREDENTIALS_WAN_BY_WAN: ((roles.WAN_PROVIDER,), True, False, _ALL),
    CREDENTIALS_TRANSCOS_BY_TRANSCOS: ((roles.TRANSITIONAL_COS,), True, False, _ALL),
    CREDENTIALS_SUPPLIER_BY_TRANSCOS: ((roles.TRANSITIONAL_COS,), True, False, _ALL),
    CREDENTIALS_ANY_BY_RECOVERY: ((roles.RECOVERY,), True, False, _ALL),
}


def rule(message_code):
    """(roles, signed, sensitive, device types) for message_code, or None if no role may send it."""
    return _TABLE.get(message_code)


def allowed(role, message_code):
    """True if role may originate message_code."""
    entry = _TABLE.get(message_code)
    return entry is not None and role in entry[ROLES]


def needs_signature(message_code):
    """True if message_code is critical (signed by its originator). A code not in the table counts as
    critical: fail closed."""
    entry = _TABLE.get(message_code)
    return True if entry is None else entry[SIGNED]


def sensitive_response(message_code):
    """True if the response to message_code carries sensitive data (to be encrypted)."""
    entry = _TABLE.get(message_code)
    return entry is not None and entry[SENSITIVE]


def runs(device_type, message_code):
    """True if a device of device_type ("esme", "gsme", "chf") runs message_code."""
    entry = _TABLE.get(message_code)
    return entry is not None and device_type in entry[DEVICES]
