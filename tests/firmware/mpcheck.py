# Helpers for the firmware tests that run both under pytest and on MicroPython (no pytest there).


def raised(exception, function, *args):
    # The exception function(*args) raised, which must be an `exception`; any other propagates.
    try:
        function(*args)
    except exception as error:
        return error
    raise AssertionError("expected %s, none was raised" % exception.__name__)


def pseudo_random_bytes(count, seed):
    # A fixed linear congruential generator: the same bytes on every port, no random module needed.
    out = bytearray(count)
    state = seed
    for i in range(count):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = state >> 16 & 0xFF
    return bytes(out)


def flip(data, index, bit=1):
    changed = bytearray(data)
    changed[index] ^= bit
    return bytes(changed)
