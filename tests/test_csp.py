"""The CSP's own limits, without boards: frames a second to one meter and through the whole CSP."""
from meterlab.csp import Csp, CspRefused


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def csp_with_sink(**limits):
    clock = Clock()
    csp = Csp({}, clock=clock, **limits)
    delivered = []

    class Client:
        def gbcs(self, frame, timeout):
            delivered.append(frame)
            return 0, None

    csp._route = lambda meter: ("socket://127.0.0.1:9", None)  # the boards' links are not what is tested here
    csp._client = lambda url: Client()
    return csp, clock, delivered


def send(csp, meter, frame):
    try:
        csp({"eui64": meter}, frame)
        return "sent"
    except CspRefused as error:
        return str(error)


def test_frames_beyond_the_csps_capacity_are_refused_before_the_air():
    csp, clock, delivered = csp_with_sink(max_per_second=5, max_total_per_second=8)
    meters = [bytes([n]) * 8 for n in range(4)]
    outcomes = [send(csp, meters[n % 4], b"frame %d" % n) for n in range(12)]
    assert outcomes[:8] == ["sent"] * 8 and len(delivered) == 8
    assert all("more than 8 frames a second through this CSP" in o for o in outcomes[8:])
    clock.now += 1.0  # a second later the window is empty again
    assert send(csp, meters[0], b"later") == "sent" and csp.refused == 4


def test_one_meter_gets_at_most_its_frames_a_second():
    csp, clock, delivered = csp_with_sink(max_per_second=3)
    meter = bytes(8)
    assert [send(csp, meter, b"x") for _ in range(3)] == ["sent"] * 3
    assert "more than 3 frames a second to meter 0000000000000000" in send(csp, meter, b"x")
    assert send(csp, bytes([1]) * 8, b"y") == "sent"  # another meter is not held up
    clock.now += 0.999
    assert send(csp, meter, b"x") != "sent"
    clock.now += 0.002
    assert send(csp, meter, b"x") == "sent"


def test_no_total_limit_by_default():
    csp, _, delivered = csp_with_sink(max_per_second=1000)
    assert all(send(csp, bytes([n % 256]) * 8, b"z") == "sent" for n in range(500)) and len(delivered) == 500
