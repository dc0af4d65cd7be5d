# meterfw.crypto: the primitives the meters need and MicroPython lacks (P-256 ECDSA and ECDH, the
# SP 800-56A KDF, AES-128-GCM/GMAC, HMAC-SHA256). Our own code only because the boards have no ECC, no
# GCM and no HMAC module; every primitive is held to external test vectors (tests/test_crypto_*.py), on
# CPython and on real MicroPython. Modules are imported one by one (from meterfw.crypto import p256) so a
# board loads only what it uses.
