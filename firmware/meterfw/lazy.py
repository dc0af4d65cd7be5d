"""A device kept on flash between uses (design.md, "Boards and links": RAM is the scarce thing). Sans-I/O.

A board's role device (the ESME's meter) is loaded when a command reaches it or when its next piece of
work falls due, and flushed to flash and dropped, code and all, straight after. Between uses only this
wrapper is resident, adding up the energy measured, so a 108 KiB board keeps the meter's RAM for rare,
heavy steps (a CS02b's certificate checks, a consent grant).

    device = LazyDevice(load, unload, clock, metrology)
    device.measure(mwh)                      # the loop's tick: cheap until the device is due
    router.device = device                   # meterfw.endpoint.CommandRouter: validate, then execute

load() -> the device, read from flash; it has measure(mwh), due(), flush(), validate() and execute().
unload() drops its code (meterfw.unload). metrology() -> the mWh used since its last call, or None.
"""


class LazyDevice:
    def __init__(self, load, unload, clock, metrology=None):
        self._load = load
        self._unload = unload
        self._clock = clock
        self._metrology = metrology
        self._device = None
        self._pending = 0  # mWh measured since the device last had it
        self._due = 0
        self.open()  # once at start: the device puts its outputs (a relay) to its stored state
        self.release()

    @property
    def loaded(self):
        return self._device is not None

    def open(self):
        """The device, loaded if need be, with everything measured so far booked to it."""
        if self._device is None:
            self._device = self._load()
        if self._metrology is not None:
            self._pending += self._metrology()
        if self._pending:
            self._device.measure(self._pending)
            self._pending = 0
        return self._device

    def release(self):
        """Flush the device to flash and drop it."""
        device = self._device
        if device is None:
            return
        self._due = device.due()
        self._device = None
        try:
            device.flush()
        finally:
            self._unload()

    def measure(self, mwh=0):
        if self._metrology is not None:
            mwh += self._metrology()
        self._pending += mwh
        if self._device is not None or self._clock() >= self._due:  # due, or left loaded by a refusal
            self.open().measure(0)
            self.release()

    def validate(self, message, role, rule):
        reason, plan = self.open().validate(message, role, rule)
        if reason:  # refused: no execute() follows to release it
            self.release()
        return reason, plan

    def execute(self, decision):
        try:
            return self.open().execute(decision)
        finally:
            self.release()
