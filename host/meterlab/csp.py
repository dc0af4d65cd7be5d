"""The communications service provider (design.md, "DCC, CSP, parties"; property 8): it carries the DCC's
frames to the meters' boards over the foundation's transports (a serial port, or a virtual board's
socket) and brings back their answers. It adds and strips nothing: a frame that did not come through
the DCC reaches the meter and dies there.

Its own limits: at most `max_online` meters connected at once (the least recently used is dropped to
reach another), at most `max_per_second` frames to any one meter and at most `max_total_per_second`
frames in all (its network's capacity; None: no limit) in a sliding second; over either the frame is
refused here (CspRefused), before it reaches the air.
"""
import collections
import time

from meterlab.client import BoardClient
from meterlab.transport import BoardConnection, BoardLost


class CspRefused(Exception):
    pass


class Csp:
    def __init__(self, endpoints, max_online=100, max_per_second=10, timeout=30.0, clock=time.monotonic,
                 max_total_per_second=None):
        self.endpoints = dict(endpoints)  # device EUI-64 -> port URL
        self.max_online = max_online
        self.max_per_second = max_per_second
        self.max_total_per_second = max_total_per_second
        self._sent_total = collections.deque()
        self.timeout = timeout
        self.clock = clock
        self._online = collections.OrderedDict()  # EUI-64 -> (connection, client), most recent last
        self._sent = collections.defaultdict(collections.deque)
        self.refused = 0
        self.peak_online = 0

    def close(self):
        for connection, _ in self._online.values():
            connection.close()
        self._online.clear()

    def _client(self, meter):
        if meter in self._online:
            self._online.move_to_end(meter)
            return self._online[meter][1]
        url = self.endpoints.get(meter)
        if url is None:
            raise CspRefused(f"no route to meter {meter.hex()}")
        while len(self._online) >= self.max_online:
            _, (connection, _) = self._online.popitem(last=False)
            connection.close()
        connection = BoardConnection(url, timeout=self.timeout)
        client = BoardClient(connection)
        self._online[meter] = (connection, client)
        self.peak_online = max(self.peak_online, len(self._online))
        return client

    def __call__(self, device, frame):
        """(the meter's pipeline reason, its response or None) for frame to the registered device."""
        meter = device["eui64"]
        now = self.clock()
        sent = self._sent[meter]
        total = self._sent_total
        for window in (sent, total):
            while window and window[0] <= now - 1.0:
                window.popleft()
        if len(sent) >= self.max_per_second:
            self.refused += 1
            raise CspRefused(f"more than {self.max_per_second} frames a second to meter {meter.hex()}")
        if self.max_total_per_second is not None and len(total) >= self.max_total_per_second:
            self.refused += 1
            raise CspRefused(f"more than {self.max_total_per_second} frames a second through this CSP")
        sent.append(now)
        total.append(now)
        try:
            return self._client(meter).gbcs(frame, timeout=self.timeout)
        except BoardLost:
            # the link dropped (a board restarted, someone else opened its port): reconnect, once. The
            # meter's counters make a repeated frame harmless: it runs at most once.
            connection, _ = self._online.pop(meter)
            connection.close()
            return self._client(meter).gbcs(frame, timeout=self.timeout)
