"""The communications service provider (design.md, "DCC, CSP, parties"; property 8): it carries the DCC's
frames to the meters' boards over the foundation's transports and brings back their answers: straight
down a meter's own serial port (or a virtual board's socket), or to its comms hub, which relays the
frame over the HAN (ESP-NOW, the Pico's UART, the virtual radio: meterfw.han) to the meter's radio
address. It adds and strips nothing, and nor does the hub: a frame that did not come through the DCC
reaches the meter and dies there.

    Csp({meter: "socket://127.0.0.1:7001", other_meter: ("socket://127.0.0.1:7010", radio_address)})

Its own limits: at most `max_online` links open at once (a hub's link serves all its meters; the least
recently used is dropped to open another), at most `max_per_second` frames to any one meter and at most `max_total_per_second`
frames in all (its network's capacity; None: no limit) in a sliding second; over either the frame is
refused here (CspRefused), before it reaches the air.

A battery gas meter behind a hub sleeps: the hub's GPF keeps the frame for its next poll and the CSP
returns the hub's ticket (meterfw.link_host.Queued); collect(device, ticket) fetches the meter's answer
later, without reaching the meter (so it counts against no meter's limit).
"""
import collections
import time

from meterlab.client import BoardClient, BoardRefused
from meterlab.transport import BoardConnection, BoardLost


class CspRefused(Exception):
    pass


class Csp:
    def __init__(self, endpoints, max_online=100, max_per_second=10, timeout=30.0, clock=time.monotonic,
                 max_total_per_second=None):
        self.endpoints = dict(endpoints)  # device EUI-64 -> port URL, or (hub's port URL, radio address)
        self.max_online = max_online
        self.max_per_second = max_per_second
        self.max_total_per_second = max_total_per_second
        self._sent_total = collections.deque()
        self.timeout = timeout
        self.clock = clock
        self._online = collections.OrderedDict()  # port URL -> (connection, client), most recent last
        self._sent = collections.defaultdict(collections.deque)
        self.refused = 0
        self.peak_online = 0

    def close(self):
        for connection, _ in self._online.values():
            connection.close()
        self._online.clear()

    def _route(self, meter):
        """(port URL, radio address through the hub at that port, or None for the meter's own port)."""
        route = self.endpoints.get(meter)
        if route is None:
            raise CspRefused(f"no route to meter {meter.hex()}")
        return (route, None) if isinstance(route, str) else (route[0], bytes(route[1]))

    def _client(self, url):
        if url in self._online:
            self._online.move_to_end(url)
            return self._online[url][1]
        while len(self._online) >= self.max_online:
            _, (connection, _) = self._online.popitem(last=False)
            connection.close()
        connection = BoardConnection(url, timeout=self.timeout)
        client = BoardClient(connection)
        self._online[url] = (connection, client)
        self.peak_online = max(self.peak_online, len(self._online))
        return client

    def _deliver(self, url, address, frame):
        client = self._client(url)
        if address is None:
            return client.gbcs(frame, timeout=self.timeout)
        try:
            return client.han_gbcs(address, frame, timeout=self.timeout)
        except BoardRefused as error:  # the hub could not reach the meter: the frame did not arrive
            raise CspRefused(f"the hub could not deliver: {error}") from None

    def collect(self, device, ticket):
        """The meter's (reason, response or None) to the frame its hub queued under ticket, or None while
        the meter has not polled since."""
        url, address = self._route(device["eui64"])
        if address is None:
            raise CspRefused(f"meter {device['eui64'].hex()} is reached on its own port: nothing is queued for it")

        def ask():
            try:
                return self._client(url).han_collect(address, ticket, timeout=self.timeout)
            except BoardRefused as error:
                raise CspRefused(f"the hub: {error}") from None

        return self._reconnecting(url, ask)

    def _reconnecting(self, url, call):
        # call(), and once more on a fresh link if the link dropped (a board restarted, someone else opened
        # its port): the meter's counters make a repeated frame harmless, and a hub keeps one ticket for it
        try:
            return call()
        except BoardLost:
            connection, _ = self._online.pop(url)
            connection.close()
            return call()

    def __call__(self, device, frame):
        """(the meter's pipeline reason, its response or None) for frame to the registered device, or
        Queued when its hub keeps the frame for a sleeping gas meter."""
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
        url, address = self._route(meter)
        sent.append(now)
        total.append(now)
        return self._reconnecting(url, lambda: self._deliver(url, address, frame))
