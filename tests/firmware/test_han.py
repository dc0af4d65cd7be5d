# meterfw.han: messages cut into link frames and put together again, once, whatever the link does to the
# frames (loses, repeats, reorders them). Runs under pytest and on MicroPython.
from meterfw import han
from mpcheck import pseudo_random_bytes, raised

HUB = b"\x02\x00\x00\x00\x00\x01"
METER = b"\x02\x00\x00\x00\x00\x02"
OTHER_METER = b"\x02\x00\x00\x00\x00\x03"


def message(size, seed=1):
    return pseudo_random_bytes(size, seed)


def test_every_size_crosses_in_as_few_frames_as_fit():
    for size in (1, 2, 244, 245, 246, 489, 490, 491, 1000, 2047, han.MAX_MESSAGE):
        data = message(size, size)
        frames = han.fragments(7, data)
        assert len(frames) == (size + han.FRAGMENT_DATA - 1) // han.FRAGMENT_DATA
        assert all(len(f) <= han.LINK_MAX_FRAME for f in frames)
        assert all(len(f) == han.LINK_MAX_FRAME for f in frames[:-1])
        receiver = han.Reassembler()
        delivered = [receiver.feed(HUB, f) for f in frames]
        assert delivered[:-1] == [None] * (len(frames) - 1) and delivered[-1] == (HUB, 7, data)
    raised(han.HanError, han.fragments, 1, b"")
    raised(han.HanError, han.fragments, 1, bytes(han.MAX_MESSAGE + 1))


def test_repeats_and_any_order_deliver_once():
    data = message(1200)
    frames = han.fragments(300, data)
    receiver = han.Reassembler()
    out = [receiver.feed(METER, f) for f in reversed(frames)]
    assert [o for o in out if o] == [(METER, 300, data)]
    # the whole message again (every acknowledgement lost): nothing new
    assert [receiver.feed(METER, f) for f in frames] == [None] * len(frames)
    every_twice = han.Reassembler()
    out = [every_twice.feed(METER, f) for f in frames for _ in range(2)]
    assert [o for o in out if o] == [(METER, 300, data)]


def test_a_lost_fragment_holds_the_message_back_until_it_comes():
    data = message(700)
    frames = han.fragments(9, data)
    receiver = han.Reassembler()
    assert [receiver.feed(HUB, f) for f in (frames[0], frames[2])] == [None, None]
    assert receiver.feed(HUB, frames[1]) == (HUB, 9, data)


def test_senders_and_messages_do_not_mix():
    a, b = message(600, 2), message(600, 3)
    fa, fb = han.fragments(1, a), han.fragments(1, b)  # the same id from two senders
    receiver = han.Reassembler()
    out = [receiver.feed(METER, fa[0]), receiver.feed(OTHER_METER, fb[0]), receiver.feed(OTHER_METER, fb[1]),
           receiver.feed(METER, fa[1]), receiver.feed(METER, fa[2]), receiver.feed(OTHER_METER, fb[2])]
    assert out[:4] == [None] * 4 and out[4] == (METER, 1, a) and out[5] == (OTHER_METER, 1, b)


def test_broken_frames_are_dropped_and_old_partials_make_room():
    receiver = han.Reassembler()
    first = han.fragments(1, message(500))
    assert receiver.feed(HUB, b"\x48\x00") is None  # too short
    assert receiver.feed(HUB, b"raw radio bytes") is None  # not ours
    assert receiver.feed(HUB, first[0][:100]) is None  # a short fragment that is not the last
    assert receiver.feed(HUB, b"\x48\x00\x01\x05\x05payload") is None  # index past the count
    assert receiver.feed(HUB, b"\x48\x00\x01\x00\x0apayload") is None  # more fragments than a message has
    assert receiver.dropped == 5
    receiver.feed(HUB, first[0])
    for n in range(2, 2 + han.PARTIAL):  # newer messages push the oldest partial out
        receiver.feed(HUB, han.fragments(n, message(500))[0])
    assert receiver.feed(HUB, first[1]) is None and receiver.feed(HUB, first[2]) is None


def test_a_lossy_repeating_link_delivers_each_message_exactly_once():
    # A deterministic link: each frame is lost, repeated, or delayed behind the next, by pseudo-random draws;
    # the sender repeats a fragment until it is "acknowledged" (not lost).
    noise = pseudo_random_bytes(20000, 42)
    draw = [0]

    def next_byte():
        draw[0] += 1
        return noise[draw[0] % len(noise)]

    receiver = han.Reassembler()
    delivered = []
    for n in range(40):
        data = message(1 + 53 * n, n + 5)
        held = None
        for frame in han.fragments(n, data):
            while next_byte() < 26:  # about 10% lost: sent again
                pass
            copies = 2 if next_byte() < 26 else 1
            for _ in range(copies):
                if held is None and next_byte() < 40:
                    held = frame  # overtaken by the next frame
                    continue
                out = receiver.feed(HUB, frame)
                if out:
                    delivered.append(out)
                if held is not None:
                    out, held = receiver.feed(HUB, held), None
                    if out:
                        delivered.append(out)
        if held is not None:
            out = receiver.feed(HUB, held)
            if out:
                delivered.append(out)
        assert delivered[-1] == (HUB, n, data), n
    assert len(delivered) == 40


def test_command_and_result_messages():
    assert han.command(b"\xdd\x00") == b"\x30\xdd\x00"
    assert han.parse_result(han.result(0, b"\xdd\x01")) == (0, b"\xdd\x01")
    assert han.parse_result(han.result(7, None)) == (7, None)
    raised(han.HanError, han.parse_result, b"\x30\x00")
    raised(han.HanError, han.parse_result, b"\xb0")
