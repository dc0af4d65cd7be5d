# The energy ledger's event log, for calibrating a board's power profile against a measured current
# trace (meterlab power calibrate). Off unless config.json says "event_log": true: a metering board does
# not write its flash for a lab's benefit.
#
# Each operation the ledger books becomes a line "time_s,operation,count" of EVENTS_FILE, the format
# meterlab.power.events reads; time_s is the board's millisecond tick in seconds (it wraps after about
# 12 days of uptime: calibrate over a shorter run). Lines wait in RAM and are appended when the meter goes
# back to sleep (flush), or sooner when BUFFER_LINES are waiting, so the log's own flash write falls at the
# end of a wake, inside the wake's window: a calibration counts it in the wake's cost, and says so.
try:
    from micropython import const
except ImportError:  # CPython

    def const(value):
        return value


EVENTS_FILE = "events.csv"
HEADER = "time_s,operation,count\n"
BUFFER_LINES = const(32)


class EventLog:
    def __init__(self, ticks_ms, path=EVENTS_FILE):
        self._ticks_ms = ticks_ms
        self._path = path
        self._lines = []

    def record(self, operation, count):
        ms = self._ticks_ms()
        self._lines.append("%d.%03d,%s,%d\n" % (ms // 1000, ms % 1000, operation, count))
        if len(self._lines) >= BUFFER_LINES:
            self.flush()

    def flush(self):
        if not self._lines:
            return
        try:
            new = False
            try:
                open(self._path).close()
            except OSError:
                new = True
            with open(self._path, "a") as f:
                if new:
                    f.write(HEADER)
                for line in self._lines:
                    f.write(line)
        finally:
            self._lines = []  # a full flash loses the lines, never the meter's work
