# The board protocol's commissioning requests (IDENTIFY, KEYGEN, INJECT, COMMISSION) for a board that is
# not commissioned yet: meterfw.device loads this only then, so a commissioned board's RAM holds none of it.
from meterfw import link


def handle(core, commissioner, kind, payload):
    """The answer to a commissioning request, for DeviceCore core."""
    if kind == link.IDENTIFY:
        if len(payload) != 1:
            return core._refuse(kind, link.ERR_MALFORMED)[0]
        return link.identity(commissioner.state, commissioner.random_bytes is not None, core.hardware_id,
                             commissioner.public_keys())
    from meterfw import commissioning, store

    if kind in (link.KEYGEN, link.INJECT):
        expected = 10 if kind == link.KEYGEN else 74
        if len(payload) != expected or payload[9] >= len(store.SUITES):
            return link.keys_reply(link.STATUS_REFUSED, b"malformed request")
        device_id = bytes(payload[1:9])
        suite = store.SUITES[payload[9]]
        try:
            if kind == link.KEYGEN:
                ds, ka = commissioner.keygen(device_id, suite)
            else:
                ds, ka = commissioner.inject(device_id, suite, bytes(payload[10:42]), bytes(payload[42:74]))
        except commissioning.CommissioningError as error:
            return link.keys_reply(link.STATUS_REFUSED, error.reason.encode())
        except Exception as error:  # a flash that fails: say so rather than crash the board
            return link.keys_reply(link.STATUS_REFUSED, ("internal error: %r" % (error,)).encode())
        return link.keys_reply(link.STATUS_DONE, ds + ka)
    if len(payload) < 2:
        return core._refuse(kind, link.ERR_MALFORMED)[0]
    step = payload[1]
    body = bytes(payload[2:])
    try:
        if step == link.STEP_ROOT:
            if len(body) != 64:
                raise commissioning.CommissioningError("the root anchor is a 64-byte public key")
            commissioner.install_root(body)
            return link.commission_reply(step, link.STATUS_DONE, b"")
        if step == link.STEP_ANCHOR:
            if not body:
                raise commissioning.CommissioningError("malformed anchor step")
            try:
                ca, ds, ka = link.split_length_prefixed(body[1:], 3)
            except link.LinkError as error:
                raise commissioning.CommissioningError("malformed anchor step: " + str(error))
            commissioner.install_anchor(body[0], ca, ds, ka)
            return link.commission_reply(step, link.STATUS_DONE, b"")
        if step == link.STEP_FINISH:
            if len(body) != 1 or body[0] >= len(commissioning.BOARD_ROLES):
                raise commissioning.CommissioningError("FINISH names no board role")
            signature = commissioner.finish()
            role = commissioning.BOARD_ROLES[body[0]]
            if core.on_commissioned is not None:
                core.endpoint, core.security_error = core.on_commissioned(role)
            core.role = role
            return link.commission_reply(step, link.STATUS_DONE, signature)
        raise commissioning.CommissioningError("unknown commissioning step")
    except commissioning.CommissioningError as error:
        return link.commission_reply(step, link.STATUS_REFUSED, error.reason.encode())
    except Exception as error:  # a flash that fails: say so rather than crash the board
        return link.commission_reply(step, link.STATUS_REFUSED, ("internal error: %r" % (error,)).encode())
