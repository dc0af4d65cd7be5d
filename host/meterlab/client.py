"""The board protocol client: board-protocol messages (meterfw.link) over a BoardConnection.

Transport (bytes and frames) lives in meterlab.transport; this layer knows requests and answers; the CLI
and the test suites are its users."""
import os
import time

from meterfw import link_host as link
from meterlab.transport import BoardTimeout, TransportError

# From wherever the board is (firmware running, friendly or raw REPL), to a soft reset that runs
# main.py: Ctrl-C stops the firmware or clears the REPL line, Ctrl-B leaves raw mode, Ctrl-D on the
# empty line of the friendly REPL soft-resets, and a soft reset from the friendly REPL runs main.py.
RESTART_KEYS = b"\r\x03\x03\r\x02\x04"


class BoardRefused(TransportError):
    """The board answered a request with ERROR."""


class UnexpectedAnswer(TransportError):
    pass


class BoardClient:
    def __init__(self, connection):
        self.connection = connection
        self.radio_frames = []  # RADIO_RECEIVED frames that arrived while waiting for something else

    def _request(self, payload, answer_kind, timeout, accept=None, expected_errors=()):
        """The answer of kind answer_kind (or one of a tuple); BoardRefused for the board's ERROR, unless
        its reason is in expected_errors: then that ERROR frame is the answer."""
        kind = payload[0]

        def is_answer(frame):
            if not frame:
                return False
            if frame[0] == link.RADIO_RECEIVED:
                self.radio_frames.append(_radio_frame(frame))
                return False
            if frame[0] == link.ERROR:
                return len(frame) == 3 and frame[1] == kind
            kinds = answer_kind if isinstance(answer_kind, tuple) else (answer_kind,)
            return frame[0] in kinds and (accept is None or accept(frame))

        answer = self.connection.request(payload, timeout=timeout, accept=is_answer)
        if answer[0] == link.ERROR and answer[2] not in expected_errors:
            raise BoardRefused(f"{self.connection.url}: {link.describe_error(answer)}")
        return answer

    def ping(self, timeout=None):
        nonce = int.from_bytes(os.urandom(4), "big")
        answer = self._request(
            link.ping(nonce), link.PONG, timeout,
            accept=lambda frame: len(frame) >= 5 and int.from_bytes(frame[1:5], "big") == nonce,
        )
        try:
            return link.parse_pong(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad PONG: {error}") from None

    def restart(self, timeout=10.0):
        """Soft-reset the board into its firmware (after mpremote or a Ctrl-C left it at the REPL),
        then wait until the firmware answers a ping; returns that PONG."""
        self.connection.send_unframed(RESTART_KEYS)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.ping(timeout=min(1.0, max(0.05, deadline - time.monotonic())))
            except BoardTimeout:
                if time.monotonic() >= deadline:
                    raise BoardTimeout(
                        f"{self.connection.url}: the firmware did not answer within {timeout:g} s of a "
                        "soft reset (is meterlab's firmware on the board? `mpremote connect PORT repl` shows "
                        "what it prints)"
                    ) from None

    def gbcs(self, frame, timeout=None):
        """Hand one GBCS frame to the board's security pipeline: (reason, response frame or None), where
        reason is a meterfw.pipeline code (ACCEPT = 0). BoardRefused when the board has no identity yet
        or its security state is damaged."""
        answer = self._request(link.gbcs(frame), link.GBCS_RESULT, timeout)
        try:
            return link.parse_gbcs_result(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad GBCS_RESULT: {error}") from None

    def han_gbcs(self, peer, frame, timeout=None):
        """Through a comms hub: relay frame to the meter at radio address peer over the HAN; the meter's
        (reason, response frame or None). BoardRefused when the hub cannot (not a hub, no radio, the meter
        did not acknowledge or answer)."""
        answer = self._request(link.han_gbcs(peer, frame), (link.GBCS_RESULT, link.HAN_QUEUED), timeout)
        try:
            return link.parse_han_answer(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad GBCS_RESULT: {error}") from None

    def han_collect(self, peer, ticket, timeout=None):
        """A gas meter's answer to the frame its hub queued under ticket: (reason, response frame or None),
        or None while it is still queued (the meter has not polled since). BoardRefused for a ticket the
        hub does not know."""
        answer = self._request(link.han_collect(peer, ticket), link.GBCS_RESULT, timeout,
                               expected_errors=(link.ERR_PENDING,))
        if answer[0] == link.ERROR:
            return None  # still queued
        try:
            return link.parse_gbcs_result(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad GBCS_RESULT: {error}") from None

    def han_pair(self, address, timeout=None):
        """Pair a gas meter with its hub (or a hub with its gas meter) by radio address."""
        self._request(link.han_pair(address), link.HAN_PAIRED, timeout)

    def ledger(self, timeout=None):
        """A battery meter's energy ledger for today (meterfw.link_host.LedgerReport)."""
        from meterfw.ledger import OPERATIONS

        answer = self._request(bytes((link.LEDGER,)), link.LEDGER_REPLY, timeout)
        try:
            return link.parse_ledger(answer, OPERATIONS)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad LEDGER_REPLY: {error}") from None

    def status(self, timeout=None):
        """(accepted, reject counts by meterfw.pipeline reason code) since the firmware started."""
        answer = self._request(link.status_request(), link.STATUS_REPLY, timeout)
        try:
            return link.parse_status(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad STATUS_REPLY: {error}") from None

    # ------------------------------------------------------------------------------ commissioning

    def identify(self, timeout=None):
        """(state, has RNG, hardware ID, (device ID, DS key, KA key) or None); state is one of
        meterfw.commissioning's BLANK, KEYED, COMMISSIONED."""
        answer = self._request(bytes((link.IDENTIFY,)), link.IDENTITY, timeout)
        try:
            return link.parse_identity(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad IDENTITY: {error}") from None

    def _keys(self, request, timeout):
        answer = self._request(request, link.KEYS, timeout)
        status, body = link.parse_status_reply(answer, link.KEYS)
        if status != link.STATUS_DONE:
            raise BoardRefused(f"{self.connection.url}: {body}")
        return body[:64], body[64:]

    def keygen(self, device_id, suite_index, timeout=None):
        """Have the board make its DS and KA keys: (DS public key, KA public key)."""
        return self._keys(bytes((link.KEYGEN,)) + bytes(device_id) + bytes((suite_index,)), timeout)

    def inject(self, device_id, suite_index, ds_private_key, ka_private_key, timeout=None):
        return self._keys(bytes((link.INJECT,)) + bytes(device_id) + bytes((suite_index,)) + ds_private_key
                          + ka_private_key, timeout)

    def commission_step(self, step, body, timeout=None):
        """One COMMISSION step; its answer's body (FINISH: the board's signature). BoardRefused with the
        board's reason when it refuses."""
        answer = self._request(bytes((link.COMMISSION, step)) + body, link.COMMISSION_REPLY, timeout,
                               accept=lambda frame: len(frame) >= 2 and frame[1] == step)
        status, reply = link.parse_status_reply(answer, link.COMMISSION_REPLY, step)
        if status != link.STATUS_DONE:
            raise BoardRefused(f"{self.connection.url}: {reply}")
        return reply

    # ------------------------------------------------------------------- the in-home port: consents

    def _consent(self, payload, timeout):
        answer = self._request(payload, link.CONSENT_REPLY, timeout)
        status, body = link.parse_status_reply(answer, link.CONSENT_REPLY)
        if status != link.STATUS_DONE:
            raise BoardRefused(f"{self.connection.url}: {body}")
        return body

    def consent_grant(self, months, expires, ca_certificate, ds_certificate, ka_certificate, timeout=None):
        """Grant a third party (named by its certificates) months of readings until expires (the meter's
        time, seconds); its party ID. Only on the meter's in-home port."""
        body = bytes((months,)) + expires.to_bytes(4, "big") + link.lengths_prefixed(
            ca_certificate, ds_certificate, ka_certificate)
        return self._consent(bytes((link.CONSENT_GRANT,)) + body, timeout)

    def consent_revoke(self, party_id, timeout=None):
        self._consent(bytes((link.CONSENT_REVOKE,)) + bytes(party_id), timeout)

    def consents(self, timeout=None):
        """[(party ID, months, expires, counter)] the meter holds."""
        body = self._consent(bytes((link.CONSENTS,)), timeout)
        return [(body[at:at + 8], body[at + 8], int.from_bytes(body[at + 9:at + 13], "big"),
                 int.from_bytes(body[at + 13:at + 21], "big")) for at in range(0, len(body), 21)]

    def rejects(self, timeout=None):
        """(rejects logged since the firmware started, the last few as (reason, originator or None,
        message code or None, counter or None), oldest first)."""
        answer = self._request(bytes((link.REJECTS,)), link.REJECTS_REPLY, timeout)
        try:
            return link.parse_rejects(answer)
        except link.LinkError as error:
            raise UnexpectedAnswer(f"{self.connection.url}: bad REJECTS_REPLY: {error}") from None

    def radio_send(self, peer, data, timeout=None):
        """Have the board transmit on its hub/meter link; True if the peer acknowledged."""
        answer = self._request(link.radio_send(peer, data), link.RADIO_SENT, timeout)
        return answer[1:] == b"\x01"

    def radio_receive(self, timeout=None):
        """The next (peer, data) the board heard on its link."""
        if self.radio_frames:
            return self.radio_frames.pop(0)
        if timeout is None:
            timeout = self.connection.timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BoardTimeout(f"{self.connection.url}: no radio frame within {timeout:g} s")
            frame = self.connection.receive(timeout=remaining)
            if frame and frame[0] == link.RADIO_RECEIVED:
                return _radio_frame(frame)


def _radio_frame(frame):
    if len(frame) < 1 + link.ADDRESS_BYTES + 1:
        raise UnexpectedAnswer("RADIO_RECEIVED frame too short")
    return bytes(frame[1 : 1 + link.ADDRESS_BYTES]), bytes(frame[1 + link.ADDRESS_BYTES :])
