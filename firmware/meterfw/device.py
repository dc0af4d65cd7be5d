# The board's core, below the role logic: answers the board protocol (meterfw.link). Sans-I/O: it takes
# a request payload and the time and heap the HAL measured, and returns the answer and, where the
# request needs the outside world (a radio transmission), the action for the caller to perform.
# GBCS frames go to the device's endpoint (meterfw.endpoint). A board without one (not commissioned, or
# its security state damaged) answers only who it is (PING, IDENTIFY) and commissioning; GBCS, STATUS,
# REJECTS and the radio it refuses with the reason it was given (property 7).
from meterfw import link

ROLES = ("esme", "gsme", "chf")
UNCONFIGURED = "unconfigured"

ACTION_RADIO_SEND = "radio_send"
ACTION_HAN_GBCS = "han_gbcs"  # (action, meter address, GBCS frame): a hub relays it and awaits the answer
ACTION_HAN_COLLECT = "han_collect"  # (action, gas meter address, ticket): its answer from the hub's GPF
ACTION_HAN_PAIR = "han_pair"  # (action, address): a gas meter's hub, or a hub's gas meter


def role_from_config(config):
    role = config.get("role") if isinstance(config, dict) else None
    return role if role in ROLES else UNCONFIGURED


class DeviceCore:
    def __init__(self, role, version, board, family, has_radio, endpoint=None,
                 security_error=link.ERR_NOT_COMMISSIONED, commissioner=None, hardware_id=bytes(8),
                 on_commissioned=None):
        self.role = role
        self.version = version
        self.board = board
        self.family = family
        self.has_radio = has_radio
        self.endpoint = endpoint
        self.security_error = security_error
        self.ledger = None  # a battery meter's meterfw.ledger.EnergyLedger, for LEDGER
        # Commissioning (meterfw.commissioning): the Commissioner, the board's hardware ID, and
        # on_commissioned(board_role) -> (endpoint, security_error), called once FINISH succeeds.
        self.commissioner = commissioner
        self.hardware_id = bytes(hardware_id)
        self.on_commissioned = on_commissioned
        # A board commissioned at boot keeps no Commissioner (its code is RAM the pipeline needs): only
        # (device ID, DS public key, KA public key, has RNG), to say who it is and refuse the rest.
        self.identity = None
        self.rejected = 0

    def handle(self, payload, now_ms, free_heap):
        """Return (answer payload or None, action tuple or None)."""
        if not payload:
            self.rejected += 1
            return None, None
        kind = payload[0]
        if kind == link.PING:
            if len(payload) != 5:
                return self._refuse(kind, link.ERR_MALFORMED)
            nonce = (payload[1] << 24) | (payload[2] << 16) | (payload[3] << 8) | payload[4]
            answer = link.pong(nonce, free_heap, now_ms, self.role, self.version, self.board, self.family)
            return answer, None
        if kind in (link.IDENTIFY, link.KEYGEN, link.INJECT, link.COMMISSION):
            return self._commissioning(kind, payload), None
        if kind == link.GBCS:
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            if len(payload) < 2:
                return self._refuse(kind, link.ERR_MALFORMED)
            decision, response = self.endpoint.handle(bytes(payload[1:]))
            return link.gbcs_result(decision.reason, response), None
        if kind == link.STATUS:
            if len(payload) != 1:
                return self._refuse(kind, link.ERR_MALFORMED)
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            pipeline = self.endpoint.pipeline
            return link.status(pipeline.accepted, pipeline.rejected), None
        if kind == link.LEDGER:
            if len(payload) != 1:
                return self._refuse(kind, link.ERR_MALFORMED)
            if self.ledger is None:
                return self._refuse(kind, link.ERR_NO_LEDGER)
            from meterfw.ledger import OPERATIONS

            return link.ledger(self.ledger, OPERATIONS), None
        if kind == link.REJECTS:
            if len(payload) != 1:
                return self._refuse(kind, link.ERR_MALFORMED)
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            log = self.endpoint.reject_log
            if log is None:
                return link.rejects(0, ()), None
            return link.rejects(log.count, log.recent), None
        if kind == link.RADIO_SEND:
            if not self.has_radio:
                return self._refuse(kind, link.ERR_NO_RADIO)
            if self.endpoint is None:  # a board that is not part of the system says nothing on the air
                return self._refuse(kind, self.security_error)
            data_length = len(payload) - 1 - link.ADDRESS_BYTES
            if data_length < 1:
                return self._refuse(kind, link.ERR_MALFORMED)
            if data_length > link.RADIO_MAX_FRAME:
                return self._refuse(kind, link.ERR_TOO_LONG)
            peer = bytes(payload[1 : 1 + link.ADDRESS_BYTES])
            return None, (ACTION_RADIO_SEND, peer, bytes(payload[1 + link.ADDRESS_BYTES :]))
        if kind == link.HAN_GBCS:
            if self.role != "chf":
                return self._refuse(kind, link.ERR_NOT_A_HUB)
            if not self.has_radio:
                return self._refuse(kind, link.ERR_NO_RADIO)
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            if len(payload) < 2 + link.ADDRESS_BYTES:
                return self._refuse(kind, link.ERR_MALFORMED)
            # relayed as it came: the hub adds and strips nothing (its own pipeline is not for its meters)
            return None, (ACTION_HAN_GBCS, bytes(payload[1:1 + link.ADDRESS_BYTES]),
                          bytes(payload[1 + link.ADDRESS_BYTES:]))
        if kind == link.HAN_COLLECT:
            if self.role != "chf":
                return self._refuse(kind, link.ERR_NOT_A_HUB)
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            if len(payload) != 5 + link.ADDRESS_BYTES:
                return self._refuse(kind, link.ERR_MALFORMED)
            return None, (ACTION_HAN_COLLECT, bytes(payload[1:7]), int.from_bytes(payload[7:11], "big"))
        if kind == link.HAN_PAIR:
            if self.role not in ("gsme", "chf"):
                return self._refuse(kind, link.ERR_NOT_GAS)
            if not self.has_radio:
                return self._refuse(kind, link.ERR_NO_RADIO)
            if self.endpoint is None:
                return self._refuse(kind, self.security_error)
            if len(payload) != 1 + link.ADDRESS_BYTES:
                return self._refuse(kind, link.ERR_MALFORMED)
            return None, (ACTION_HAN_PAIR, bytes(payload[1:]))
        return self._refuse(kind, link.ERR_UNKNOWN_KIND)

    def _refuse(self, kind, reason):
        self.rejected += 1
        return link.error(kind, reason), None

    # ------------------------------------------------------------------------------- commissioning

    def _commissioning(self, kind, payload):
        commissioner = self.commissioner
        if commissioner is None and self.identity is not None:
            return self._commissioned(kind, payload)
        if commissioner is None:
            return self._refuse(kind, self.security_error)[0]
        # The commissioning requests' code is loaded only on a board that is not commissioned yet.
        from meterfw import device_commissioning

        return device_commissioning.handle(self, commissioner, kind, payload)

    def _commissioned(self, kind, payload):
        device_id, ds, ka, has_rng = self.identity
        if kind == link.IDENTIFY:
            if len(payload) != 1:
                return self._refuse(kind, link.ERR_MALFORMED)[0]
            return link.identity(2, has_rng, self.hardware_id, (device_id, ds, ka))  # 2: COMMISSIONED
        reason = b"already commissioned: anchors change only through signed CS02b commands"
        if kind == link.COMMISSION:
            step = payload[1] if len(payload) > 1 else 0
            return link.commission_reply(step, link.STATUS_REFUSED, reason)
        return link.keys_reply(link.STATUS_REFUSED, reason)

    # ------------------------------------------------------------------------------- in-home port

    def handle_home(self, payload, now_ms, free_heap):
        """The answer to a request on the meter's in-home port (the consumer's side): who the meter is,
        and consents. Nothing else is served there; consents are served nowhere else."""
        if not payload:
            return None
        kind = payload[0]
        if kind == link.PING:
            return self.handle(payload, now_ms, free_heap)[0]
        if kind not in (link.CONSENT_GRANT, link.CONSENT_REVOKE, link.CONSENTS):
            return self._refuse(kind, link.ERR_UNKNOWN_KIND)[0]
        if self.endpoint is None or getattr(self.endpoint.pipeline, "consents", None) is None:
            return self._refuse(kind, self.security_error or link.ERR_NOT_COMMISSIONED)[0]
        import meterfw
        from meterfw import device_home  # rare: loaded for the request, unloaded after it

        try:
            return device_home.handle(self, kind, bytes(payload[1:]))
        finally:
            device_home = None
            meterfw.unload("device_home")
