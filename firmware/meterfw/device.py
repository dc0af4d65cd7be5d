# The board's core, below the role logic: answers the board protocol (meterfw.link). Sans-I/O: it takes
# a request payload and the time and heap the HAL measured, and returns the answer and, where the
# request needs the outside world (a radio transmission), the action for the caller to perform.
# GBCS frames go to the device's endpoint (meterfw.endpoint): a board without one (not commissioned, or
# its security state damaged) refuses them with the reason it was given.
from meterfw import link

ROLES = ("esme", "gsme", "chf")
UNCONFIGURED = "unconfigured"

ACTION_RADIO_SEND = "radio_send"


def role_from_config(config):
    role = config.get("role") if isinstance(config, dict) else None
    return role if role in ROLES else UNCONFIGURED


class DeviceCore:
    def __init__(self, role, version, board, family, has_radio, endpoint=None,
                 security_error=link.ERR_NOT_COMMISSIONED):
        self.role = role
        self.version = version
        self.board = board
        self.family = family
        self.has_radio = has_radio
        self.endpoint = endpoint
        self.security_error = security_error
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
            data_length = len(payload) - 1 - link.ADDRESS_BYTES
            if data_length < 1:
                return self._refuse(kind, link.ERR_MALFORMED)
            if data_length > link.RADIO_MAX_FRAME:
                return self._refuse(kind, link.ERR_TOO_LONG)
            peer = bytes(payload[1 : 1 + link.ADDRESS_BYTES])
            return None, (ACTION_RADIO_SEND, peer, bytes(payload[1 + link.ADDRESS_BYTES :]))
        return self._refuse(kind, link.ERR_UNKNOWN_KIND)

    def _refuse(self, kind, reason):
        self.rejected += 1
        return link.error(kind, reason), None
