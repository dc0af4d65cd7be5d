"""A device's GBCS endpoint: one incoming frame through the security pipeline, the accepted command to
its executor, the answer through the responder (design.md, "Principles": check, then act, then answer).
Sans-I/O.

    endpoint = GbcsEndpoint(pipeline, responder, executor)
    decision, response = endpoint.handle(frame)      # response: the frame to send back, or None

executor(decision) -> bytes runs an accepted command and returns the response payload: answer(status,
*fields), a DER SEQUENCE (meterfw.der) of the status (STATUS_OK, or STATUS_FAILED when the command was
authentic but could not be carried out) and then the message code's own fields. By the time the executor runs, the
pipeline has already advanced the counter, so a power cut while acting loses the command but never lets
it run twice. A rejected frame reaches no executor and gets no response (see meterfw.response).

RejectLog is the pipeline's log on a board: the last few rejects (reason, originator, message code,
counter) for the lab to read over the board protocol, beside the per-reason counts.

CommandRecorder keeps the last few commands a device ran (role, code, counter), so a lab, and the tests,
can see exactly which commands ran and in what order; it is the whole executor of a role that does not
act on commands yet (it acknowledges each).

CommandRouter puts a device's handlers behind the pipeline, the same on a board and in the host's
in-process fleet: credential replacement (meterfw.ownership, every role) first, then the role's device
(an ElectricityMeter), which checks its own payloads as the pipeline's validator and runs its commands.

    router = CommandRouter(credentials, recorder, device=None)   # router.device may be set later
    DevicePipeline(..., validator=router.validate); GbcsEndpoint(pipeline, responder, router.execute)
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


from meterfw import der

STATUS_OK = const(0)
STATUS_FAILED = const(1)

_RECORD_DEPTH = const(16)


def answer(status, *fields):
    """The response payload: status, then the message code's fields."""
    return der.encode((status,) + fields)


class GbcsEndpoint:
    def __init__(self, pipeline, responder, executor, reject_log=None):
        self.pipeline = pipeline
        self.responder = responder
        self.executor = executor
        self.reject_log = reject_log  # the RejectLog the pipeline logs to, if any
        self.failed = 0  # accepted commands whose executor raised
        self.unanswered = 0  # accepted commands no response could be built for

    def handle(self, frame):
        """(Decision, response frame or None) for one incoming frame. Never raises."""
        decision = self.pipeline.process(frame)
        if not decision.accepted:
            return decision, None
        try:
            payload = self.executor(decision)
        except Exception:  # an authentic command that could not be carried out is answered, not lost
            self.failed += 1
            payload = answer(STATUS_FAILED)
        try:
            return decision, self.responder.respond(decision, payload)
        except Exception:
            self.unanswered += 1
            return decision, None


class CommandRecorder:
    """Executor that acknowledges every accepted command and remembers the last _RECORD_DEPTH of them."""

    def __init__(self):
        self.count = 0
        self.recent = []  # (role, message code, counter), oldest first

    def __call__(self, decision):
        message = decision.message
        self.recent.append((decision.role, message.message_code, message.counter))
        if len(self.recent) > _RECORD_DEPTH:
            self.recent.pop(0)
        self.count += 1
        return answer(STATUS_OK)


class CredentialsOnDemand:
    """meterfw.ownership's CredentialUpdater for the router, loaded for a CS02b command and dropped after it:
    credentials change rarely, and its code is RAM a board needs for everything else."""

    def __init__(self, anchors, counters):
        self._anchors = anchors
        self._counters = counters
        self._updater = None

    def handles(self, message_code):
        from meterfw.authorisation import CREDENTIAL_CODES

        return message_code in CREDENTIAL_CODES

    def _load(self):
        if self._updater is None:
            from meterfw.ownership import CredentialUpdater

            self._updater = CredentialUpdater(self._anchors, self._counters)
        return self._updater

    def _drop(self):
        import meterfw

        self._updater = None
        meterfw.unload("ownership")

    def validate(self, message, role, rule):
        result = self._load().validate(message, role, rule)
        if result[0] != 0:  # refused: no execute() follows
            self._drop()
        return result

    def execute(self, decision):
        try:
            return self._load().execute(decision)
        finally:
            self._drop()


class CommandRouter:
    def __init__(self, credentials, recorder, device=None):
        self.credentials = credentials  # a meterfw.ownership.CredentialUpdater, or CredentialsOnDemand
        self.recorder = recorder
        self.device = device  # validate(message, role, rule) and execute(decision), or None

    def validate(self, message, role, rule):
        if self.credentials.handles(message.message_code):
            return self.credentials.validate(message, role, rule)
        if self.device is not None:
            return self.device.validate(message, role, rule)
        return 0, None  # pipeline.ACCEPT: a role with no device yet takes what the table allows

    def execute(self, decision):
        answer = self.recorder(decision)
        if self.credentials.handles(decision.message.message_code):
            return self.credentials.execute(decision)
        if self.device is not None:
            return self.device.execute(decision)
        return answer


class RejectLog:
    """The pipeline's log callback, keeping the last _RECORD_DEPTH rejects as (reason, originator or None,
    message code or None, counter or None); the fields are None when the frame did not parse."""

    def __init__(self):
        self.count = 0  # every reject ever logged, so a reader knows how many fell out
        self.recent = []

    def __call__(self, reason, message):
        if message is None:
            entry = (reason, None, None, None)
        else:
            entry = (reason, bytes(message.originator), message.message_code, message.counter)
        self.recent.append(entry)
        if len(self.recent) > _RECORD_DEPTH:
            self.recent.pop(0)
        self.count += 1
