"""One capture file that every link of a session writes its GBCS frames into, and the process-wide capture
the CLI's `--capture FILE` turns on once for every connection the command opens.

Several BoardConnections (each in whatever thread uses it) and the radio broker append to one Capture, so
appends take a lock; each block is written whole and flushed at once, so a session that crashes leaves a
file Wireshark reads up to its last frame. A link's Interface Description Block is written when the link
is first named, before any of its packets, as pcapng requires.
"""
import logging
import threading
import time

from meterlab import __version__
from meterlab.capture import pcapng

logger = logging.getLogger(__name__)


class Capture:
    """A pcapng file of GBCS frames, one interface per link. Use as a context manager or close() it."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.Lock()
        self._interfaces = {}  # link name -> interface id, in the order their IDBs were written
        self._file = open(path, "wb")
        self._write(pcapng.section_header("meterlab %s" % __version__))

    def link(self, name, description):
        """The interface id of the link called name (e.g. "serial socket://127.0.0.1:5555"), writing its
        Interface Description Block the first time the name is seen; description says from whose side
        inbound and outbound are meant. Links with the same name share one interface."""
        with self._lock:
            interface = self._interfaces.get(name)
            if interface is None:
                interface = self._interfaces[name] = len(self._interfaces)
                self._write(pcapng.interface_description(name, description))
            return interface

    def record(self, link, direction, frame, comment=None):
        """Append frame, seen now on interface link going pcapng.INBOUND or OUTBOUND; comment, if given,
        says more (who sent it, what carried it). Frames recorded after close() are dropped."""
        timestamp_us = time.time_ns() // 1000
        block = pcapng.enhanced_packet(link, timestamp_us, frame, direction, comment)
        with self._lock:
            self._write(block)

    def close(self):
        """Close the file; safe to repeat."""
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _write(self, block):
        # Called with the lock held. A capture that cannot be written (disk full, file gone) must not take
        # the session down with it: it says so once and records nothing more.
        if self._file.closed:
            return
        try:
            self._file.write(block)
            self._file.flush()
        except OSError as error:
            logger.error("capture %s stopped: %s", self.path, error)
            self._file.close()


_current = None
_current_lock = threading.Lock()

# The default of every capture= parameter: the process-wide capture as it is when the object is made
# (None there means no capture). An explicit capture=None records nothing whatever runs process-wide.
CURRENT = object()


def chosen(capture):
    """capture, or the process-wide one when capture is CURRENT."""
    return _current if capture is CURRENT else capture


def start(path):
    """Start the process-wide capture into path (replacing any file there) and return it: every
    BoardConnection and RadioBroker made after this records into it unless told otherwise."""
    global _current
    with _current_lock:
        if _current is not None:
            raise RuntimeError("a capture into %s is already running" % _current.path)
        _current = Capture(path)
        return _current


def stop():
    """Close the process-wide capture, if one is running; connections still open stop recording."""
    global _current
    with _current_lock:
        capture, _current = _current, None
    if capture is not None:
        capture.close()


def current():
    """The process-wide capture, or None."""
    return _current
