# Boot entry of every meterlab board: reads the board's role from config.json, wires the core to the
# HAL and runs the loop. The same file runs on ESP32, RP2040 and the virtual board; only `hal` differs.
import asyncio
import json
import os

import hal
import meterfw
from meterfw import __version__, framing, link
from meterfw.device import ACTION_HAN_GBCS, ACTION_RADIO_SEND, DeviceCore, role_from_config

_BREAK = b"\x03"
_RADIO_TIMEOUT_S = 2
_HAN_ANSWER_S = 10  # how long a hub waits for its meter's answer over the HAN


def read_config():
    try:
        with open("config.json") as f:
            return json.load(f)
    except OSError:
        return {}
    except ValueError:
        print("config.json is not valid JSON; running unconfigured")
        return {}


_METER_FOLDER = "meter"  # the ESME's registers, profile and tariff (meterfw.esme)
_GAS_FOLDER = "gas"  # the GSME's register and valve (meterfw.gsme)
_MEASURE_S = 10
_meter = None  # the role's device (an ESME's meter, kept on flash between uses), once commissioned
_measure = None  # what the metering loop calls: the device booking what its metrology measured
_router = None  # the endpoint's CommandRouter, which start_device() gives the meter
_endpoint_pipeline = None  # its DevicePipeline, which a battery meter gives its energy budget


def load_security(role):
    """(GbcsEndpoint or None, link error code or None, Commissioner or None). A board that is not
    commissioned, or whose stored state is damaged, refuses GBCS frames saying why, rather than run on
    half a state; a damaged one refuses commissioning too (a lab repairs its flash first)."""
    from meterfw import commissioning, store

    try:
        storage = store.FileStorage(store.FOLDER)  # identity, anchors, counters: one record a file
        commissioner = commissioning.Commissioner(storage, hal.random_bytes if hal.random_bytes(1) else None)
        counters = store.CounterStore(storage, commissioner.anchors)
    except (store.StoreError, OSError) as error:
        print("security state damaged, refusing commands:", error)
        return None, link.ERR_STATE_DAMAGED, None
    if commissioner.state != commissioning.COMMISSIONED:
        return None, link.ERR_NOT_COMMISSIONED, commissioner
    from meterfw.endpoint import CommandRecorder, CommandRouter, GbcsEndpoint, RejectLog
    from meterfw.ownership import CredentialUpdater
    from meterfw.pipeline import DevicePipeline
    from meterfw.response import Responder

    from meterfw.consent import ConsentStore

    anchors = commissioner.anchors
    device_id, ds_private_key, ka_private_key, suite = commissioner.identities.identity
    reject_log = RejectLog()
    credentials = CredentialUpdater(anchors, counters)
    try:
        consents = ConsentStore(storage, hal.unix_time)  # the meter's clock decides when a consent expires
    except store.StoreError as error:
        print("consent records damaged, refusing commands:", error)
        return None, link.ERR_STATE_DAMAGED, commissioner
    global _router, _endpoint_pipeline
    _router = CommandRouter(credentials, CommandRecorder(), _meter)  # start_device() adds the meter
    pipeline = DevicePipeline(device_id, ka_private_key, anchors, counters, suite, log=reject_log,
                              validator=_router.validate, consents=consents,
                              device_type=role if role in ("esme", "gsme") else None)
    _endpoint_pipeline = pipeline
    responder = Responder(device_id, ds_private_key, ka_private_key, anchors, suite)

    return GbcsEndpoint(pipeline, responder, _router.execute, reject_log), None, commissioner


def start_device(role):
    """The role's device behind the pipeline: an ESME's meter (registers, tariff, relay), loaded from its
    flash for each use (meterfw.lazy). Started after the commissioning code is unloaded: on a 108 KiB
    board both at once do not fit. A link error code when its records are damaged (the board then
    refuses commands), else None."""
    global _meter, _measure
    if role == "gsme":
        return start_gas_meter()
    if role != "esme":
        return None
    from meterfw import store
    from meterfw.lazy import LazyDevice

    switch = hal.supply_switch()

    def load():
        from meterfw.esme import ElectricityMeter

        return ElectricityMeter(store.FileStorage(_METER_FOLDER), switch, hal.unix_time)

    try:
        _meter = LazyDevice(load, lambda: meterfw.unload("esme"), hal.unix_time, hal.metrology().take_mwh)
        _measure = _meter.measure
        if _router is not None:
            _router.device = _meter
    except (store.StoreError, OSError) as error:
        print("meter records damaged, refusing commands:", error)
        return link.ERR_STATE_DAMAGED
    return None


def start_gas_meter():
    # The battery gas meter: its ledger's costs from the board's power profile (board.json), its pipeline
    # asking that ledger before each MAC check and verify. Small, so it stays loaded.
    global _meter, _measure
    from meterfw import ledger, store
    from meterfw.gsme import GasMeter, default_budget

    try:
        with open("board.json") as f:
            costs = ledger.costs_from(json.load(f)["power"])
        energy = ledger.EnergyLedger(costs, *default_budget(costs), hal.unix_time)
        _meter = GasMeter(store.FileStorage(_GAS_FOLDER), hal.supply_switch("valve"), hal.unix_time, energy)
        load = hal.metrology()
        _measure = lambda: _meter.measure(load.take_litres())  # noqa: E731
    except (OSError, ValueError, KeyError, store.StoreError) as error:
        print("gas meter cannot start (its records, or board.json's power profile):", error)
        return link.ERR_STATE_DAMAGED
    if _router is not None:
        _router.device = _meter
        _endpoint_pipeline.budget = energy.allow
    if _core is not None:
        _core.ledger = energy
    return None


def commissioned_identity(commissioner):
    # What a commissioned board says of itself, kept instead of the Commissioner (see DeviceCore.identity).
    device_id, ds_public_key, ka_public_key = commissioner.public_keys()
    return device_id, ds_public_key, ka_public_key, commissioner.random_bytes is not None


def write_role(role):
    # config.json's role, replaced atomically (write new, rename) like every other state of the board.
    config = read_config()
    config["role"] = role
    with open("config.json.new", "w") as f:
        json.dump(config, f)
    os.rename("config.json.new", "config.json")


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
    error = start_device(role)
    if error is not None:
        core.endpoint = None
        core.security_error = error


_core = None
_pending_role = None


# The HAN (meterfw.han): a meter runs the GBCS frames its hub relays and answers over the air; a hub
# relays the host's frames (HAN_GBCS) and waits for the answer. Other frames heard are shown to the host;
# a board that is not commissioned is not part of the system and takes and passes nothing.
_han_id = None  # this board's last HAN message id (from a random start: ids must not repeat across boots)
_han_wait = None  # (meter address, asyncio.Event, [(reason, response)]) while a hub waits for its meter


async def han_send(radio, peer, message):
    """True once every fragment of message was acknowledged by peer's link."""
    global _han_id
    from meterfw import han

    if _han_id is None:
        seed = hal.random_bytes(2) or hal.ticks_ms().to_bytes(4, "big")[-2:]
        _han_id = seed[0] << 8 | seed[1]
    _han_id = (_han_id + 1) & 0xFFFF
    for frame in han.fragments(_han_id, message):
        for _ in range(han.RETRIES):
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
        if not han.is_han(data):
            serial.write(framing.encode(link.radio_received(peer, data)))
            continue
        whole = assembler.feed(peer, data)
        if whole is None:
            continue
        sender, _, message = whole
        if message[0] == han.COMMAND and core.role in ("esme", "gsme"):
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


async def measure_energy():
    # The meter's metrology loop: the meter books what its load used since the last look (an ESME looks
    # too before each command). It runs on every board: one commissioned as a meter becomes one at once.
    while True:
        await asyncio.sleep(_MEASURE_S)
        if _measure is None:
            continue
        try:
            _measure()
        except Exception as error:  # a flash write failing must not stop the meter answering
            print("metering:", error)


async def perform(action, radio):
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
        security_error = start_device(role)
        if security_error is not None:
            endpoint = None
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
