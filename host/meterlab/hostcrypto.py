"""The host's side of the GBCS security functions, through OpenSSL (pyca/cryptography) for speed: the
firmware's meterfw.gbcs computes the same values in pure Python (and the tests hold the two together).
The KDF and framing stay meterfw's: one definition of what is MAC'd."""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from meterfw import gbcs


def gmac(key, iv, aad, length=12):
    """AES-128-GMAC: the GCM tag of aad with no plaintext, cut to length bytes."""
    encryptor = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    encryptor.authenticate_additional_data(aad)
    encryptor.finalize()
    return encryptor.tag[:length]


def mac_for(message, z, suite="gbcs"):
    """meterfw.gbcs.mac_for, with OpenSSL's AES-GCM for the gbcs suite."""
    if suite != "gbcs":
        return gbcs.mac_for(message, z, suite)
    key, iv, aad = gbcs.mac_inputs(z, message)
    return gmac(key, iv, aad, gbcs.MAC_SIZE)
