"""A small writer of classic pcap files (libpcap format, microsecond timestamps) for GBCS frames.

Link type DLT_USER0 (147): Wireshark has no registered link type for GBCS, so a reader maps USER0 to
its gbcs_message dissector through the user DLT table, e.g.
    tshark -o 'uat:user_dlts:"User 0 (DLT=147)","gbcs_message","0","","0",""' -r FILE
One record per frame, captured whole (no snap length cut).
"""
import struct
import time

DLT_USER0 = 147
_MAGIC = 0xA1B2C3D4
_VERSION = (2, 4)
_SNAPLEN = 65535


def _record_header(timestamp, length):
    seconds = int(timestamp)
    micros = int(round((timestamp - seconds) * 1_000_000))
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    return struct.pack("<IIII", seconds, micros, length, length)


def write_pcap(path, frames, timestamps=None, linktype=DLT_USER0):
    """Write frames (an iterable of bytes) to path as a classic little-endian pcap, one record per frame.
    timestamps: seconds since the epoch, one per frame (float or int); None stamps every record now.
    Returns the number of records written. ValueError when the timestamps do not match the frames or a
    frame is longer than the snap length."""
    frames = [bytes(frame) for frame in frames]
    if timestamps is None:
        now = time.time()
        timestamps = [now] * len(frames)
    else:
        timestamps = list(timestamps)
        if len(timestamps) != len(frames):
            raise ValueError("%d timestamps for %d frames" % (len(timestamps), len(frames)))
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", _MAGIC, _VERSION[0], _VERSION[1], 0, 0, _SNAPLEN, linktype))
        for frame, timestamp in zip(frames, timestamps):
            if len(frame) > _SNAPLEN:
                raise ValueError("frame of %d bytes exceeds the snap length %d" % (len(frame), _SNAPLEN))
            if timestamp < 0:
                raise ValueError("timestamp before the epoch")
            out.write(_record_header(timestamp, len(frame)))
            out.write(frame)
    return len(frames)
