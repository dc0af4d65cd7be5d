# The hardware abstraction layer: the only code that touches a board's hardware. One module per board
# family; this package picks the one for the interpreter it runs on. Every family offers the same names:
#   board_info() -> dict         board name, family, heap size, radio MAC (hex) or None
#   serial() -> Serial            the USB serial port shared with the REPL: async read(), write(data)
#   radio() -> Radio or None      hub/meter link: mac, async send(peer, data) -> bool, async recv()
#   ticks_ms(), free_heap()       clock and RAM, passed into the core (which reads neither itself)
#   random_bytes(n)               n bytes from the board's RNG, or None when it has no usable one
#   unique_id()                   the board's 8-byte hardware ID (the default device ID at commissioning)
#   home() -> port or None        the meter's in-home port, where the consumer grants consents: async
#                                 read(), write(data); a UART of its own on a real board (its
#                                 description's "home"), a second socket on the virtual board
#   unix_time()                   the board's clock in whole Unix seconds, whatever its port's epoch
#   sleep_s(seconds)              async: a gas meter's sleep between wakes, in the board's seconds (a
#                                 virtual board's clock may run faster than the host's: --clock)
#   supply_switch(name)           switch(on) driving an output: "supply_relay", the ESME's load relay,
#                                 or "valve", the GSME's (pins.NAME, else the relay's: an LED on a dev
#                                 board; a level in STATE/gpio.json on the virtual board)
#   metrology()                   what the ESME measures: take_mwh() -> energy since the last call
#   run(coro)                     run the firmware's main coroutine as the board does
#   break_to_repl()               leave the firmware for the REPL (a 0x03 arrived on the serial port)
import sys

if sys.platform == "esp32":
    from hal.esp32 import *  # noqa: F401,F403
elif sys.platform == "rp2":
    from hal.rp2 import *  # noqa: F401,F403
elif sys.platform == "webassembly":
    from hal.virtual import *  # noqa: F401,F403
else:
    raise ImportError("no HAL for platform " + sys.platform)
