# meterfw: the portable firmware core. Wire codec, crypto, security pipeline, device roles.
# No I/O here: the HAL (firmware/hal/) passes bytes, time and storage in, so the same core runs on
# ESP32, RP2040, the virtual board and under CPython for tests.
__version__ = "0.1.0"
