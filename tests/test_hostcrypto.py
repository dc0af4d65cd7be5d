"""The host's OpenSSL MAC equals the firmware's pure-Python one (and so GBCS's, which the firmware's is
held to by the RTDS tests)."""
from hypothesis import given, settings
from hypothesis import strategies as st

from meterfw import gbcs
from meterfw.crypto import gcm
from meterlab import hostcrypto


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=16, max_size=16), st.binary(min_size=12, max_size=12), st.binary(max_size=300))
def test_gmac_equals_the_firmware(key, iv, aad):
    assert hostcrypto.gmac(key, iv, aad) == gcm.gmac(key, iv, aad, 12)


@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=2**64 - 1),
       st.binary(max_size=200), st.sampled_from(["gbcs", "hmac"]))
def test_mac_for_equals_the_firmware(z, counter, payload, suite):
    message = gbcs.parse(gbcs.build(gbcs.CRA_COMMAND, counter, bytes(range(8)), bytes(range(8, 16)), 0x0027, payload))
    assert hostcrypto.mac_for(message, z, suite) == gbcs.mac_for(message, z, suite)
