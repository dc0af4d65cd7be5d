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
