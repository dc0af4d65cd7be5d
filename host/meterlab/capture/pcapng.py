"""pcapng blocks, byte for byte as the pcapng specification (draft-ietf-opsawg-pcapng) lays them out.

pcapng rather than classic pcap (meterlab.capture.pcap) because a session's traffic crosses several links
at once: pcapng names each link in its own Interface Description Block and marks each packet inbound or
outbound (epb_flags) and can say who sent it (opt_comment), which classic pcap cannot.

Sans-I/O: each function returns one whole block, little-endian, so a writer appends a block with one
write and a file cut short by a crash ends at a block boundary or inside the last block only.

Every block is  block type (4) || block total length (4) || body || block total length (4), the length
counting the whole block; options are  code (2) || length (2) || value padded with zeros to 32 bits,
ended by opt_endofopt (code 0, length 0) when there are any.
"""
import struct

LINKTYPE_USER0 = 147  # DLT_USER0: Wireshark maps it to gbcs_message through its user DLT table

INBOUND = 1  # epb_flags bits 0-1: 01 inbound, 10 outbound, from the interface's point of view
OUTBOUND = 2

SECTION_HEADER = 0x0A0D0D0A
INTERFACE_DESCRIPTION = 0x00000001
ENHANCED_PACKET = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
VERSION = (1, 0)
SECTION_LENGTH_UNKNOWN = -1  # the file is written as it goes, so the section's length is not known

OPT_ENDOFOPT = 0
OPT_COMMENT = 1
SHB_USERAPPL = 4
IF_NAME = 2
IF_DESCRIPTION = 3
EPB_FLAGS = 2

_MAX_OPTION_VALUE = 0xFFFF


def section_header(user_application=None):
    """The Section Header Block that starts the file: byte order, version 1.0, length unknown."""
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, VERSION[0], VERSION[1], SECTION_LENGTH_UNKNOWN)
    return _block(SECTION_HEADER, body + _options((SHB_USERAPPL, _text(user_application))))


def interface_description(name, description, linktype=LINKTYPE_USER0):
    """One link's Interface Description Block; packets name it by its position among the section's IDBs.
    Snap length 0: no limit, every frame is captured whole. Timestamps in microseconds (if_tsresol's
    default, so the option is left out)."""
    body = struct.pack("<HHI", linktype, 0, 0)
    return _block(INTERFACE_DESCRIPTION, body + _options((IF_NAME, _text(name)),
                                                         (IF_DESCRIPTION, _text(description))))


def enhanced_packet(interface_id, timestamp_us, packet, direction, comment=None):
    """One packet, captured whole, on interface interface_id at timestamp_us (microseconds since the
    epoch), direction INBOUND or OUTBOUND."""
    if direction not in (INBOUND, OUTBOUND):
        raise ValueError("direction is INBOUND or OUTBOUND, not %r" % (direction,))
    if timestamp_us < 0:
        raise ValueError("timestamp before the epoch")
    packet = bytes(packet)
    body = struct.pack("<IIIII", interface_id, timestamp_us >> 32, timestamp_us & 0xFFFFFFFF,
                       len(packet), len(packet)) + _padded(packet)
    return _block(ENHANCED_PACKET, body + _options((EPB_FLAGS, struct.pack("<I", direction)),
                                                   (OPT_COMMENT, _text(comment))))


def _block(block_type, body):
    total = 12 + len(body)  # body is a multiple of 4 bytes, so the block is too
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def _options(*options):
    """The options whose value is not None, then opt_endofopt; nothing at all when there are none."""
    encoded = b"".join(struct.pack("<HH", code, len(value)) + _padded(value)
                       for code, value in options if value is not None)
    return encoded + struct.pack("<HH", OPT_ENDOFOPT, 0) if encoded else b""


def _text(value):
    """A UTF-8 option value (the spec says not zero-terminated); None stays None (option left out)."""
    if value is None:
        return None
    encoded = value.encode("utf-8")
    if len(encoded) > _MAX_OPTION_VALUE:
        raise ValueError("option text of %d bytes: at most %d" % (len(encoded), _MAX_OPTION_VALUE))
    return encoded


def _padded(data):
    return data + bytes(-len(data) % 4)
