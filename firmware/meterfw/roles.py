# The remote party roles of GBCS (RemotePartyRole): whose trust anchors a device holds, one replay
# counter each, and who may send which command (meterfw.authorisation).
try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


ROOT = const(0)
RECOVERY = const(1)
SUPPLIER = const(2)
NETWORK_OPERATOR = const(3)
ACCESS_CONTROL_BROKER = const(4)  # the DCC's MAC role
TRANSITIONAL_COS = const(5)
WAN_PROVIDER = const(6)
ISSUING_AUTHORITY = const(7)
OTHER = const(127)

ALL = (ROOT, RECOVERY, SUPPLIER, NETWORK_OPERATOR, ACCESS_CONTROL_BROKER, TRANSITIONAL_COS, WAN_PROVIDER,
       ISSUING_AUTHORITY, OTHER)

NAMES = {
    ROOT: "root",
    RECOVERY: "recovery",
    SUPPLIER: "supplier",
    NETWORK_OPERATOR: "network operator",
    ACCESS_CONTROL_BROKER: "access control broker",
    TRANSITIONAL_COS: "transitional CoS",
    WAN_PROVIDER: "WAN provider",
    ISSUING_AUTHORITY: "issuing authority",
    OTHER: "other",
}
