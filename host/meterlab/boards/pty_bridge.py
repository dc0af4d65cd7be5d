"""A virtual board's serial port as a pseudo-terminal: a /dev/pts/N path that tools built for real boards
(pyserial on a device path, mpremote, the HIL plugin's --board ROLE=PORT) open as they would /dev/ttyUSB0.

    with PtyBridge(board.url) as bridge:
        pytest ... --board esme=<bridge.path>

Bytes are relayed both ways between the pseudo-terminal and the board's socket:// port, unchanged. POSIX
only (os.openpty).
"""
import os
import select
import socket
import threading
import tty
from urllib.parse import urlparse


class PtyBridge:
    def __init__(self, url):
        parsed = urlparse(url)
        if parsed.scheme != "socket" or not parsed.hostname or not parsed.port:
            raise ValueError(f"{url}: a PtyBridge relays a virtual board's socket://HOST:PORT")
        self.url = url
        self._address = (parsed.hostname, parsed.port)
        self._master = self._slave = None
        self._socket = None
        self._thread = None
        self._stop = threading.Event()
        self.path = None

    def start(self):
        self._socket = socket.create_connection(self._address, timeout=10)
        self._socket.settimeout(10)  # reads wait in select(); a send may wait for room
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: a serial line carries bytes as they are
        self.path = os.ttyname(self._slave)  # the slave stays open here, so the master never sees a hang-up
        self._thread = threading.Thread(target=self._relay, name=f"pty {self.path}", daemon=True)
        self._thread.start()
        return self

    def _relay(self):
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master, self._socket], [], [], 0.1)
            try:
                if self._master in ready:
                    self._socket.sendall(os.read(self._master, 4096))
                if self._socket in ready:
                    data = self._socket.recv(4096)
                    if not data:
                        return  # the board went away
                    os.write(self._master, data)
            except OSError:
                if self._stop.is_set():
                    return

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        if self._socket is not None:
            self._socket.close()
        self._master = self._slave = self._socket = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
