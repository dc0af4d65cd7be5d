"""Device responses checked by a second implementation (CPython): what a supplier running OpenSSL and
pycryptodome would do with them, none of it through meterfw's crypto. Z by pyca/cryptography's ECDH, the
GBCS KDF by hashlib, GMAC and AES-GCM by pycryptodome, the device's signature by pyca/cryptography."""
import hashlib

from Crypto.Cipher import AES
from cryptography.hazmat.primitives.asymmetric import ec

from meterfw import authorisation, pipeline, roles
from meterfw.response import Responder
from pipeline_fakes import (DEVICE, DEVICE_DS, DEVICE_KA, KA_KEYS, PARTY_IDS, FakeCounters, command,
                            make_anchors, public)
from reference_p256 import pyca_verifies

S = roles.SUPPLIER


def pyca_z(private_key, public_key):
    private = ec.derive_private_key(int.from_bytes(private_key, "big"), ec.SECP256R1())
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + public_key)
    return private.exchange(ec.ECDH(), peer)


def gbcs_kdf(z, originator, cra, counter, recipient):
    other_info = (bytes.fromhex("60857406080300") + originator + b"\x09" + bytes([cra])
                  + counter.to_bytes(8, "big") + recipient)
    return hashlib.sha256(b"\x00\x00\x00\x01" + z + other_info).digest()[:16]


def responses(suite="gbcs"):
    anchors = make_anchors()
    device = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, FakeCounters(), suite)
    responder = Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors, suite)
    read = device.process(command(S, authorisation.READ_IMPORT_REGISTERS, 77, suite=suite))
    tariff = device.process(command(S, authorisation.TARIFF, 78, payload=b"t", sign=True, suite=suite))
    assert read.accepted and tariff.accepted
    return (responder.respond(read, b"\x00import 4242 Wh"), responder.respond(tariff, b"\x00"))


def test_macd_encrypted_read_response_opens_with_independent_crypto():
    frame, _ = responses()
    z = pyca_z(KA_KEYS[S], public(DEVICE_KA))
    # the frame, by hand: DD header, length, security header, APDU, MAC
    assert frame[:7] == b"\xdd" + bytes(6) and frame[8:13] == b"\x11\x00\x00\x00\x00"
    apdu, mac = frame[13:-12], frame[-12:]
    assert apdu[:3] == b"\xdf\x09\x02" and int.from_bytes(apdu[3:11], "big") == 77
    assert apdu[12:20] == DEVICE and apdu[21:29] == PARTY_IDS[S]
    gmac = AES.new(gbcs_kdf(z, DEVICE, 2, 77, PARTY_IDS[S]), AES.MODE_GCM, nonce=DEVICE + bytes(4), mac_len=12)
    gmac.update(b"\x11\x00\x00\x00\x00\x00" + apdu)
    gmac.verify(mac)
    # the payload: other-info length 02, code 0027, content length, then the content: a DER OCTET STRING
    # (04, length) of ciphertext || tag; no signature
    assert apdu[29:33] == b"\x00\x02\x00\x27"
    assert apdu[34] == 0x04 and apdu[35] == apdu[33] - 2
    content = apdu[36:34 + apdu[33]]
    assert apdu[34 + apdu[33]:] == b"\x00"
    cipher = AES.new(gbcs_kdf(z, DEVICE, 4, 77, PARTY_IDS[S]), AES.MODE_GCM, nonce=DEVICE + b"\x00\x00\x00\x02",
                     mac_len=12)
    cipher.update(b"\x00\x27")
    assert cipher.decrypt_and_verify(content[:-12], content[-12:]) == b"\x00import 4242 Wh"


def test_hmac_suite_response_with_independent_crypto():
    import hmac

    frame, _ = responses("hmac")
    z = pyca_z(KA_KEYS[S], public(DEVICE_KA))
    key = gbcs_kdf(z, DEVICE, 2, 77, PARTY_IDS[S])
    expected = hmac.new(key, b"\x11\x00\x00\x00\x00\x00" + frame[13:-12], hashlib.sha256).digest()[:12]
    assert frame[-12:] == expected


def test_signed_response_verifies_with_openssl():
    _, frame = responses()
    assert frame[0] == 0xDF  # bare APDU: a critical command's answer is signed, not MAC'd
    assert frame[-65] == 0x40
    signed_part, signature = frame[1:-65], frame[-64:]
    assert pyca_verifies(public(DEVICE_DS), signed_part, signature)
    assert not pyca_verifies(public(DEVICE_DS), signed_part[:-1] + b"\x01", signature)
