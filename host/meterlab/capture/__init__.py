"""Recording the GBCS frames a session carries, as pcapng for Wireshark's GBCS dissector (docs/capture.md).

start(path) turns the process-wide capture on (the CLI's `--capture FILE`); every BoardConnection and
RadioBroker made afterwards records into it. Capture(path) is one capture file to pass explicitly.

Wireshark has no link type for GBCS, so frames are written with link type USER0 (147), and a reader maps
USER0 to the gbcs_message dissector in its user DLT table: TSHARK_OPTION is that one setting, for
`tshark -o TSHARK_OPTION -r FILE`.
"""
from meterlab.capture.pcapng import INBOUND, LINKTYPE_USER0, OUTBOUND
from meterlab.capture.recorder import CURRENT, Capture, current, start, stop

TSHARK_OPTION = 'uat:user_dlts:"User 0 (DLT=%d)","gbcs_message","0","","0",""' % LINKTYPE_USER0

__all__ = ["CURRENT", "Capture", "INBOUND", "OUTBOUND", "TSHARK_OPTION", "current", "start", "stop"]
