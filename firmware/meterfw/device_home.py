# The in-home port's consent requests (grant, revoke, list): meterfw.device loads this for a request and
# unloads it after, since consents change rarely and a board's RAM is scarce.
from meterfw import link


def handle(core, kind, body):
    """The answer to a consent request (body: the payload after its kind) for DeviceCore core."""
    consents = core.endpoint.pipeline.consents
    try:
        if kind == link.CONSENTS:
            if body:
                raise ValueError("malformed request")
            return link.consent_reply(link.STATUS_DONE, b"".join(
                c.party_id + bytes((c.months,)) + c.expires.to_bytes(4, "big") + c.counter.to_bytes(8, "big")
                for c in consents.consents()))
        if kind == link.CONSENT_REVOKE:
            if len(body) != 8:
                raise ValueError("malformed request")
            if not consents.revoke(body):
                raise ValueError("no consent for that party")
            return link.consent_reply(link.STATUS_DONE, body)
        return link.consent_reply(link.STATUS_DONE, _grant(core, consents, body))
    except ValueError as error:
        return link.consent_reply(link.STATUS_REFUSED, str(error).encode())
    except Exception as error:  # a flash that fails: say so rather than crash the board
        return link.consent_reply(link.STATUS_REFUSED, ("internal error: %r" % (error,)).encode())


def _grant(core, consents, body):
    import meterfw
    from meterfw import roles

    if len(body) < 5:
        raise ValueError("malformed request")
    months = body[0]
    expires = int.from_bytes(body[1:5], "big")
    try:
        ca, ds, ka = link.split_length_prefixed(body[5:], 3)
    except link.LinkError as error:
        raise ValueError("malformed request: " + str(error))
    root = core.endpoint.pipeline.anchors.anchor(roles.ROOT)
    from meterfw import credentials

    try:
        party_id, ds_key, ka_key = credentials.check_party(roles.OTHER, ca, ds, ka, root[1])
    except credentials.CredentialError as error:
        raise ValueError("third party's certificates: " + error.reason)
    finally:
        credentials = None
        meterfw.unload("credentials", "x509")
    consents.grant(party_id, ds_key, ka_key, months, expires)
    return party_id
