# Boot entry of every meterlab board: reads the board's role from config.json, wires the core to the
# HAL and runs the loop. The same file runs on ESP32, RP2040 and the virtual board; only `hal` differs.
import asyncio

import hal
import meterfw
from boardconfig import read_config, write_config
from meterfw import __version__, framing, link
from meterfw.device import (ACTION_HAN_COLLECT, ACTION_HAN_GBCS, ACTION_HAN_PAIR, ACTION_RADIO_SEND, DeviceCore,
                             role_from_config)


_BREAK = b"\x03"
_RADIO_TX = "radio_tx_byte"  # meterfw.ledger's operation, named here so a mains board need not import it
_RADIO_TIMEOUT_S = 2
_HAN_ANSWER_S = 10  # how long a hub waits for its meter's answer over the HAN
_METER_FOLDER = "meter"  # the ESME's registers, profile and tariff (meterfw.esme)
_MEASURE_S = 10
_meter = None  # the role's device (an ESME's meter, kept on flash between uses), once commissioned
_measure = None  # what the metering loop calls: the device booking what its metrology measured
_router = None  # the endpoint's CommandRouter, between load_security() and the device's start
_scheduled = False  # a gas meter on its wake schedule (gas_io), which measures when it wakes


def _startup():
    import startup

    return startup


def _drop_startup():
    import sys

    sys.modules.pop("startup", None)


def load_security(role):
    global _router
    endpoint, error, commissioner, _router = _startup().load_security(role)
    return endpoint, error, commissioner


def _open_esme():
    # The ESME's meter, read from its flash for one use (meterfw.lazy); defined here, not in startup, so
    # the startup code is not kept alive by a reference to it.
    from meterfw import store
    from meterfw.esme import ElectricityMeter

    return ElectricityMeter(store.FileStorage(_METER_FOLDER), hal.supply_switch(), hal.unix_time)


def _close_esme():
    meterfw.unload("esme", "der_decode")  # the meter alone keeps the payload decoder: both go


def start_device(role, endpoint):
    """A link error code if the role's device cannot start (the board then refuses commands), else None."""
    global _meter, _measure, _router
    error, _meter, metrology = _startup().start_device(role, _router, endpoint, _open_esme, _close_esme)
    _router = None
    _drop_startup()
    if role == "esme" and _meter is not None:
        _measure = _meter.measure
    elif role == "gsme" and _meter is not None:
        _measure = lambda: _meter.measure(metrology.take_litres())  # noqa: E731
        if hal.radio() is not None:  # its schedule: asleep, and awake to poll its hub (gas_io)
            import gas_io

            asyncio.create_task(gas_io.schedule(hal.radio(), _meter, _measure, lambda: _core, han_send))
            global _scheduled
            _scheduled = True  # it books its gas when it wakes, not in the metering loop
    return error


def commissioned_identity(commissioner):
    return _startup().commissioned_identity(commissioner)


def write_role(role):
    write_config("role", role)


def commissioned(role):
    """Called by the core once commissioning FINISHes: the board's role, then its security, anew."""
    write_role(role)
    meterfw.unload("x509", "credentials")
    endpoint, security_error, commissioner = load_security(role)
    if endpoint is not None:
        _core.identity = commissioned_identity(commissioner)
        _core.commissioner = None
        commissioner = None
        meterfw.unload("commissioning", "device_commissioning")
        global _pending_role
        _pending_role = role  # started once this request has returned and its code can be freed
    return endpoint, security_error


def start_pending_device(core):
    global _pending_role
    role = _pending_role
    _pending_role = None
    meterfw.unload()  # a collection, now that the commissioning request's frames are gone
    error = start_device(role, core.endpoint)
    if error is not None:
        core.endpoint = None
        core.security_error = error
    core.ledger = getattr(_meter, "ledger", None)  # a gas meter's


_core = None
_pending_role = None


# The HAN (meterfw.han): a meter runs the GBCS frames its hub relays and answers over the air; a hub
# relays the host's frames (HAN_GBCS) and waits for the answer. Other frames heard are shown to the host;
# a board that is not commissioned is not part of the system and takes and passes nothing.
_han_id = None  # this board's last HAN message id (from a random start: ids must not repeat across boots)
_han_wait = None  # (meter address, asyncio.Event, [(reason, response)]) while a hub waits for its meter


async def han_send(radio, peer, message, energy=None):
    """True once every fragment of message was acknowledged by peer's link. A battery meter's energy
    ledger (energy) pays for every byte sent, repeats included."""
    global _han_id
    from meterfw import han

    if _han_id is None:
        seed = hal.random_bytes(2) or hal.ticks_ms().to_bytes(4, "big")[-2:]
        _han_id = seed[0] << 8 | seed[1]
    _han_id = (_han_id + 1) & 0xFFFF
    for frame in han.fragments(_han_id, message):
        for _ in range(han.RETRIES):
            if energy is not None:
                energy.charge(_RADIO_TX, len(frame))
            try:
                if await asyncio.wait_for(radio.send(peer, frame), _RADIO_TIMEOUT_S):
                    break
            except asyncio.TimeoutError:
                pass
        else:
            return False
    return True


async def han_relay(radio, peer, frame):
    # A hub's relay of one GBCS frame to its meter, as it came: the board protocol's answer.
    global _han_wait
    from meterfw import han

    answered = asyncio.Event()
    box = []
    _han_wait = (peer, answered, box)
    try:
        if not await han_send(radio, peer, han.command(frame)):
            return link.error(link.HAN_GBCS, link.ERR_HAN_LOST)
        try:
            await asyncio.wait_for(answered.wait(), _HAN_ANSWER_S)
        except asyncio.TimeoutError:
            return link.error(link.HAN_GBCS, link.ERR_NO_ANSWER)
        return link.gbcs_result(*box[0])
    finally:
        _han_wait = None


async def serve_radio(core, radio, serial):
    from meterfw import han

    assembler = han.Reassembler()
    while True:
        peer, data = await radio.recv()
        if core.endpoint is None:
            continue
        if core.role == "gsme":
            import gas_io

            if not gas_io.hears(data):  # a sleeping gas meter's radio is off
                continue
        if not han.is_han(data):
            serial.write(framing.encode(link.radio_received(peer, data)))
            continue
        whole = assembler.feed(peer, data)
        if whole is None:
            continue
        sender, _, message = whole
        if core.role == "gsme":
            gas_io.from_hub(sender, message)
        elif message[0] == han.COMMAND and core.role == "esme":
            decision, response = core.endpoint.handle(message[1:])
            # answered before the next frame is taken: a flood of commands queues in the radio's driver,
            # not as ever more tasks in the heap
            await han_send(radio, sender, han.result(decision.reason, response))
        elif message[0] == han.RESULT and _han_wait is not None and _han_wait[0] == sender:
            try:
                answer = han.parse_result(message)
            except han.HanError:
                continue  # a malformed answer is no answer: the hub goes on waiting, then times out
            _han_wait[2].append(answer)
            _han_wait[1].set()
        elif core.role == "chf":  # a gas meter polling its hub (meterfw.han_poll)
            import gas_io

            await gas_io.answer_poll(radio, sender, message, han_send)


async def measure_energy():
    # The meter's metrology loop: the meter books what its load used since the last look (an ESME looks
    # too before each command). It runs on every board: one commissioned as a meter becomes one at once.
    while True:
        await asyncio.sleep(_MEASURE_S)
        if _measure is None or _scheduled:
            continue
        try:
            _measure()
        except Exception as error:  # a flash write failing must not stop the meter answering
            print("metering:", error)


async def perform(action, radio):
    if action[0] in (ACTION_HAN_COLLECT, ACTION_HAN_PAIR) or (action[0] == ACTION_HAN_GBCS and _core.role == "chf"):
        import gas_io  # the hub's GPF and the gas meter's pairing: loaded on those boards only

        answer = gas_io.perform(action)
        if answer is not None:
            return answer
    if action[0] == ACTION_HAN_GBCS:
        return await han_relay(radio, action[1], action[2])
    if action[0] == ACTION_RADIO_SEND:
        try:
            acknowledged = await asyncio.wait_for(radio.send(action[1], action[2]), _RADIO_TIMEOUT_S)
        except asyncio.TimeoutError:
            acknowledged = False
        return link.radio_sent(acknowledged)
    return None


async def serve_serial(core, serial, radio):
    decoder = framing.FrameDecoder()
    while True:
        data = await serial.read()
        cut = data.find(_BREAK)
        for payload in decoder.feed(data if cut < 0 else data[:cut]):
            answer, action = core.handle(payload, hal.ticks_ms(), hal.free_heap())
            if _pending_role is not None:
                start_pending_device(core)
            if action is not None:
                answer = await perform(action, radio)
            if answer is not None:
                serial.write(framing.encode(answer))
        if cut >= 0:
            hal.break_to_repl()


async def serve_home(core, home):
    # The meter's in-home port: the consumer's side, where consents are granted and revoked.
    decoder = framing.FrameDecoder()
    while True:
        data = await home.read()
        for payload in decoder.feed(data):
            answer = core.handle_home(payload, hal.ticks_ms(), hal.free_heap())
            if answer is not None:
                home.write(framing.encode(answer))


async def main():
    info = hal.board_info()
    radio = hal.radio()
    serial = hal.serial()
    global _core
    role = role_from_config(read_config())
    endpoint, security_error, commissioner = load_security(role)
    identity = None
    if endpoint is not None:  # commissioned: keep who it is, not the commissioning code
        identity = commissioned_identity(commissioner)
        commissioner = None
        meterfw.unload("commissioning", "device_commissioning")
        security_error = start_device(role, endpoint)
        if security_error is not None:
            endpoint = None
    _drop_startup()
    core = DeviceCore(role, __version__, info["board"], info["family"],
                      radio is not None, endpoint, security_error, commissioner, hal.unique_id(), commissioned)
    core.identity = identity
    core.ledger = getattr(_meter, "ledger", None)  # a gas meter's, started above
    _core = core
    tasks = []
    home = hal.home()
    if home is not None:
        tasks.append(asyncio.create_task(serve_home(core, home)))
    if radio is not None:
        tasks.append(asyncio.create_task(serve_radio(core, radio, serial)))
    tasks.append(asyncio.create_task(measure_energy()))
    try:
        await serve_serial(core, serial, radio)
    finally:
        for task in tasks:
            task.cancel()


hal.run(main())
