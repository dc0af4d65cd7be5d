# meterfw: the portable firmware core. Wire codec, crypto, security pipeline, device roles.
# No I/O here: the HAL (firmware/hal/) passes bytes, time and storage in, so the same core runs on
# ESP32, RP2040, the virtual board and under CPython for tests.
__version__ = "0.1.0"


def unload(*names):
    """Drop meterfw submodules a rare step needed (the certificate reader for commissioning and credential
    replacement): on a 108 KiB board their bytecode is RAM the rest of the firmware needs. The next
    import loads them again."""
    import gc
    import sys

    if sys.implementation.name != "micropython":
        return  # the host and CPython tests keep their modules (and their classes' identity)
    package = sys.modules[__name__]
    for name in names:
        sys.modules.pop(__name__ + "." + name, None)
        if name in package.__dict__:
            delattr(package, name)
    gc.collect()


def decoded(payload, *kinds):
    """meterfw.der_decode's decode(payload), held by its check() to kinds when kinds are given, for a
    device that decodes a payload only on a rare step (a gas meter or a hub: a credential replacement, a
    third party's read). The decoder is loaded for the call and dropped after, unless something had
    loaded it already (an electricity meter keeps it), so its bytecode is not on the heap when the
    certificate reader comes in."""
    import sys

    kept = __name__ + ".der_decode" in sys.modules
    from meterfw import der_decode

    try:
        values = der_decode.decode(payload)
        return der_decode.check(values, *kinds) if kinds else values
    finally:
        der_decode = None
        if not kept:
            unload("der_decode")
