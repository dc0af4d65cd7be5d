# meterfw.endpoint and the board protocol's GBCS path through DeviceCore. Runs under pytest and on
# MicroPython: a frame in, the pipeline's decision, the executor, the response out.
from meterfw import authorisation, der, gbcs, gbcs_host, pipeline, roles
from meterfw import link_host as link
from meterfw.device import DeviceCore
from meterfw.endpoint import STATUS_FAILED, STATUS_OK, CommandRecorder, GbcsEndpoint, RejectLog
from meterfw.response import Responder
from mpcheck import raised
from pipeline_fakes import (DEVICE, DEVICE_DS, DEVICE_KA, KA_KEYS, PARTY_IDS, FakeCounters, command,
                            make_anchors, party_z, public)

READ = authorisation.READ_IMPORT_REGISTERS
TARIFF = authorisation.TARIFF
S = roles.SUPPLIER


def setup(executor=None):
    anchors = make_anchors()
    counters = FakeCounters()
    log = RejectLog()
    p = pipeline.DevicePipeline(DEVICE, DEVICE_KA, anchors, counters, log=log)
    recorder = CommandRecorder()
    endpoint = GbcsEndpoint(p, Responder(DEVICE, DEVICE_DS, DEVICE_KA, anchors), executor or recorder, log)
    return endpoint, recorder, anchors, counters


def test_accepted_command_runs_once_and_is_answered():
    endpoint, recorder, _, counters = setup()
    frame = command(S, TARIFF, 5, payload=b"t", sign=True)
    decision, response = endpoint.handle(frame)
    assert decision.accepted and recorder.recent == [(S, TARIFF, 5)]
    answer = gbcs.parse(response)
    assert answer.payload == der.encode([STATUS_OK]) and gbcs.verify_signature(answer, public(DEVICE_DS))
    # the same frame again: a replay, no run, no answer
    decision, response = endpoint.handle(frame)
    assert decision.reason == pipeline.REJECT_REPLAY and response is None
    assert recorder.count == 1 and counters.counter(S) == 5


def test_rejected_frames_run_nothing_and_get_no_answer():
    endpoint, recorder, _, counters = setup()
    for frame, reason in ((b"\xdd\x00", pipeline.REJECT_MALFORMED),
                          (command(S, READ, 1, z=party_z(KA_KEYS[S])), pipeline.REJECT_BAD_MAC),
                          (command(S, TARIFF, 2), pipeline.REJECT_BAD_SIGNATURE),
                          (command(roles.NETWORK_OPERATOR, TARIFF, 2, sign=True), pipeline.REJECT_NOT_AUTHORISED)):
        decision, response = endpoint.handle(frame)
        assert decision.reason == reason and response is None
    assert recorder.count == 0 and counters.snapshot() == ([], 0)


def test_executor_failure_is_answered_as_failed_and_not_retried():
    def broken(decision):
        raise OSError("relay stuck")

    endpoint, _, _, counters = setup(broken)
    frame = command(S, READ, 9)
    decision, response = endpoint.handle(frame)
    assert decision.accepted and endpoint.failed == 1
    answer = gbcs.parse(response)
    assert gbcs_host.decrypt_content(party_z(KA_KEYS[S]), answer) == der.encode([STATUS_FAILED])
    assert endpoint.handle(frame)[0].reason == pipeline.REJECT_REPLAY
    assert counters.counter(S) == 9


def test_unanswerable_command_still_counts_as_run():
    endpoint, recorder, anchors, _ = setup()

    class Gone:
        def respond(self, decision, payload):
            raise ValueError("no anchor")

    endpoint.responder = Gone()
    decision, response = endpoint.handle(command(S, READ, 3))
    assert decision.accepted and response is None and endpoint.unanswered == 1 and recorder.count == 1


def test_recorder_keeps_the_last_sixteen():
    endpoint, recorder, _, _ = setup()
    for counter in range(1, 21):
        assert endpoint.handle(command(S, READ, counter))[0].accepted
    assert recorder.count == 20 and len(recorder.recent) == 16
    assert recorder.recent[0] == (S, READ, 5) and recorder.recent[-1] == (S, READ, 20)


def test_board_protocol_carries_gbcs_frames_and_status():
    endpoint, recorder, _, _ = setup()
    core = DeviceCore("esme", "1.0", "b", "f", False, endpoint)
    answer, action = core.handle(link.gbcs(command(S, READ, 4)), 0, 0)
    assert action is None
    reason, response = link.parse_gbcs_result(answer)
    assert reason == pipeline.ACCEPT and gbcs.parse(response).counter == 4
    reason, response = link.parse_gbcs_result(core.handle(link.gbcs(command(S, READ, 4)), 0, 0)[0])
    assert reason == pipeline.REJECT_REPLAY and response is None
    accepted, rejected = link.parse_status(core.handle(link.status_request(), 0, 0)[0])
    assert accepted == 1 and len(rejected) == pipeline.REASON_COUNT
    assert rejected[pipeline.REJECT_REPLAY] == 1 and sum(rejected) == 1
    assert core.handle(bytes((link.GBCS,)), 0, 0)[0] == link.error(link.GBCS, link.ERR_MALFORMED)
    assert core.handle(link.status_request() + b"\x00", 0, 0)[0] == link.error(link.STATUS, link.ERR_MALFORMED)


def test_board_without_security_refuses_gbcs_with_its_reason():
    for reason in (link.ERR_NOT_COMMISSIONED, link.ERR_STATE_DAMAGED):
        core = DeviceCore("esme", "1.0", "b", "f", False, None, reason)
        assert core.handle(link.gbcs(b"\xdf"), 0, 0)[0] == link.error(link.GBCS, reason)
        assert core.handle(link.status_request(), 0, 0)[0] == link.error(link.STATUS, reason)
        assert "commission" in link.describe_error(link.error(link.GBCS, link.ERR_NOT_COMMISSIONED))


def test_link_codec_limits():
    raised(ValueError, link.gbcs, b"")
    raised(ValueError, link.gbcs, bytes(link.MAX_GBCS_FRAME + 1))
    assert len(link.gbcs(bytes(link.MAX_GBCS_FRAME))) == 2048
    raised(link.LinkError, link.parse_gbcs_result, b"\xb0")
    raised(link.LinkError, link.parse_gbcs_result, b"\x82\x00")
    good = link.status(3, [0, 1, 2])
    assert link.parse_status(good) == (3, (0, 1, 2))
    raised(link.LinkError, link.parse_status, good[:-1])
    raised(link.LinkError, link.parse_status, good + b"\x00")


def test_rejects_are_logged_and_read_over_the_board_protocol():
    endpoint, _, _, _ = setup()
    core = DeviceCore("esme", "1.0", "b", "f", False, endpoint)
    assert link.parse_rejects(core.handle(bytes((link.REJECTS,)), 0, 0)[0]) == (0, [])
    core.handle(link.gbcs(b"\xdd\x00"), 0, 0)
    core.handle(link.gbcs(command(S, TARIFF, 12)), 0, 0)  # unsigned tariff
    total, entries = link.parse_rejects(core.handle(bytes((link.REJECTS,)), 0, 0)[0])
    assert total == 2
    assert entries == [(pipeline.REJECT_MALFORMED, None, None, None),
                       (pipeline.REJECT_BAD_SIGNATURE, PARTY_IDS[S], TARIFF, 12)]
    for counter in range(100, 120):
        core.handle(link.gbcs(command(S, TARIFF, counter)), 0, 0)
    total, entries = link.parse_rejects(core.handle(bytes((link.REJECTS,)), 0, 0)[0])
    assert total == 22 and len(entries) == 16 and entries[-1][3] == 119 and entries[0][3] == 104
    assert core.handle(bytes((link.REJECTS, 0)), 0, 0)[0] == link.error(link.REJECTS, link.ERR_MALFORMED)
    reply = link.rejects(1, [(7, None, None, None)])
    raised(link.LinkError, link.parse_rejects, reply[:-1])
    raised(link.LinkError, link.parse_rejects, b"\x82" + reply[1:])
