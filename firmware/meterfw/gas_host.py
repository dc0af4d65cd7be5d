# The gas meter's data, host side: its mirror bytes (meterfw.gsme's mirror(), what the hub's GPF keeps)
# and the answers of a gas meter (GCS13a) and of the GPF (GCS61), in the DER their docstrings give
# (meterfw.gsme, meterfw.gpf). Kept off the boards, like meterfw.esme_host: a board never decodes them.
from meterfw import der_decode, endpoint
from meterfw.gsme import MIRROR_SIZE


def parse_mirror(data):
    """(meter time, register litres, valve open) of a gas meter's mirror() bytes; ValueError otherwise."""
    if len(data) != MIRROR_SIZE:
        raise ValueError("a gas meter's mirror is 13 bytes")
    return int.from_bytes(data[:4], "big"), int.from_bytes(data[4:12], "big"), data[12] == 1


def parse_register_read(payload):
    """(meter time, register litres, valve open) of a successful GCS13a answer; ValueError otherwise."""
    status, fields = der_decode.answer(payload)
    if status != endpoint.STATUS_OK:
        raise ValueError("the gas meter could not answer the read (status %d)" % status)
    return tuple(der_decode.check(fields, int, int, bool))


def parse_gpf_read(payload):
    """(age in seconds, meter time, register litres, valve open) of a successful GCS61 answer: the GPF's
    mirror of the gas meter; ValueError otherwise (status 1: the meter has not polled the hub yet)."""
    status, fields = der_decode.answer(payload)
    if status != endpoint.STATUS_OK:
        raise ValueError("the GPF has no mirror of the gas meter yet (status %d)" % status)
    return tuple(der_decode.check(fields, int, int, int, bool))
