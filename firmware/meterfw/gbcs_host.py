# GBCS, the parties' side: opening a device's encrypted content (meterfw.gbcs.encrypt_content). A device
# encrypts and never decrypts, so this lives off the boards, like meterfw.esme_host.
from meterfw import der_decode, gbcs
from meterfw.crypto import gcm


def decrypt_content(z, message):
    """The plaintext of message.payload made by gbcs.encrypt_content; gcm.InvalidTag (a ValueError) when
    the payload was not encrypted for this z or was altered, is shorter than a tag, or is not an OCTET
    STRING."""
    try:
        payload = der_decode.octets(message.payload)
    except ValueError:
        raise gcm.InvalidTag("encrypted content is not an OCTET STRING")
    if len(payload) < gbcs.MAC_SIZE:
        raise gcm.InvalidTag("encrypted content shorter than its tag")
    key = gbcs.content_key(z, message.originator, message.counter, message.recipient)
    code = message.message_code
    return gcm.decrypt(key, gbcs.content_iv(message.originator, message.cra), payload[:-gbcs.MAC_SIZE],
                       bytes((code >> 8, code & 0xFF)), payload[-gbcs.MAC_SIZE:])
