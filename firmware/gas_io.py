# The gas side of the HAN, for the two boards that have one (design.md, "Gas: GSME, CHF and GPF"); main.py
# imports it only on a gas meter or a comms hub, so an electricity meter's RAM never holds it.
# - The hub's GPF (meterfw.gpf): frames for its paired gas meter are queued, not relayed; the meter's
#   answers wait for the DCC; its polls refresh the mirror the hub's pipeline answers GCS61 reads from.
# - The gas meter's schedule (meterfw.gsme): asleep with its radio off, awake every WAKE_INTERVAL_S to
#   book its gas, poll the hub and run what was queued; its ledger pays the wake and every radio byte.
import asyncio

import hal
from boardconfig import read_config, write_config
from meterfw import link

_LISTEN_S = 2  # how long an awake gas meter listens for its hub's answer before it sleeps again


_gpf = None  # the hub's GasProxy, once commissioned
_inbox = None  # (hub address, asyncio.Event, [messages]) while the gas meter is awake and polling
_ledger = None  # the gas meter's energy ledger, which pays for what its radio hears
_radio = None  # the wake's meterfw.gsme_poll.WakeRadio: what it may still hear


_peer = ()  # han_peer()'s answer, once config.json was read (() before: None means not paired)


def han_peer():
    # config.json's han_peer (HAN_PAIR): a gas meter's hub, or a hub's gas meter; None before pairing.
    # Read once: the hub asks on every frame it relays and every poll it hears; pairing updates it.
    global _peer
    if _peer == ():
        text = read_config().get("han_peer")
        try:
            _peer = bytes.fromhex(text) if text else None
        except ValueError:
            _peer = None
    return _peer


def start_proxy(router):
    """The hub's GPF behind its pipeline (GCS61 reads); a link error code if its records are damaged."""
    global _gpf
    from meterfw import store
    from meterfw.gpf import FOLDER, GasProxy

    try:
        _gpf = GasProxy(store.FileStorage(FOLDER), hal.unix_time)
    except (OSError, store.StoreError) as error:
        print("GPF records damaged, refusing commands:", error)
        return link.ERR_STATE_DAMAGED
    if router is not None:
        router.device = _gpf
    return None


def perform(action):
    """The board protocol's answer to a gas action (main.perform), or None: relay it as for any meter."""
    from meterfw.device import ACTION_HAN_COLLECT, ACTION_HAN_PAIR
    from meterfw.store import StoreError

    try:
        return _perform(action)
    except (OSError, StoreError) as error:  # the GPF's flash: refuse, and keep serving the host
        print("GPF records:", error)
        kind = {ACTION_HAN_COLLECT: link.HAN_COLLECT, ACTION_HAN_PAIR: link.HAN_PAIR}.get(action[0], link.HAN_GBCS)
        return link.error(kind, link.ERR_STATE_DAMAGED)


def _perform(action):
    global _peer
    from meterfw.device import ACTION_HAN_COLLECT, ACTION_HAN_GBCS, ACTION_HAN_PAIR

    if action[0] == ACTION_HAN_PAIR:
        if _gpf is not None and action[1] != han_peer():
            _gpf.forget()  # another gas meter: the old one's frames, answers and mirror are not its
        write_config("han_peer", action[1].hex())
        _peer = action[1]
        return bytes((link.HAN_PAIRED,))
    paired = _gpf is not None and action[1] == han_peer()
    if action[0] == ACTION_HAN_GBCS:
        if not paired:
            return None
        # the sleeping gas meter's frame: kept for its next poll, as it came
        from meterfw.gpf import GpfError

        try:
            return link.han_queued(_gpf.queue(action[2]))
        except GpfError:
            return link.error(link.HAN_GBCS, link.ERR_QUEUE_FULL)
    if action[0] == ACTION_HAN_COLLECT:
        from meterfw.gpf import PENDING

        answer = _gpf.result(action[2]) if paired else None
        if answer is None:
            return link.error(link.HAN_COLLECT, link.ERR_NO_SUCH_TICKET)
        if answer == PENDING:
            return link.error(link.HAN_COLLECT, link.ERR_PENDING)
        return link.gbcs_result(*answer)
    return None


async def answer_poll(radio, meter, message, han_send):
    # The hub's side of a gas meter's wake: refresh the mirror, keep its answer, hand it the next frame.
    from meterfw import han_poll as han

    if _gpf is None or meter != han_peer():
        return  # not this hub's gas meter
    try:
        polled = han.parse_poll(message)
    except han.HanError:
        return  # not a poll: the meter hears nothing, sleeps, and polls again at its next wake
    from meterfw.store import StoreError

    try:
        if isinstance(polled, tuple):
            ticket, reason, mirror, response = polled
            _gpf.done(ticket, reason, response)
        else:
            mirror = polled
        _gpf.synced(mirror)
        waiting = _gpf.next_queued()
    except (OSError, StoreError) as error:  # the GPF's flash: no answer; the hub goes on hearing the rest
        print("GPF records:", error)
        return
    await han_send(radio, meter, han.queued(*waiting) if waiting else han.idle())


def hears(frame):
    """True if the gas meter's radio is on: it is awake and polling, and its wake may still hear this
    (meterfw.gsme_poll.WakeRadio, which books it in the ledger)."""
    return _inbox is not None and _radio.hear(len(frame))


def from_hub(sender, message):
    if _inbox is not None and sender == _inbox[0]:
        _inbox[2].append(message)
        _inbox[1].set()


async def schedule(radio, meter, measure, core, han_send):
    """The gas meter's day: sleep until the schedule's next wake, book the gas, poll, run, sleep."""
    global _ledger
    import meterfw
    from meterfw import ledger
    from meterfw.gsme import next_wake

    _ledger = meter.ledger
    while True:
        now = hal.unix_time()
        await hal.sleep_s(next_wake(now) - now)
        device = core()
        if device is None or device.endpoint is None:
            continue
        _ledger.charge(ledger.WAKE)
        try:
            measure()
            hub = han_peer()
            if hub is not None:  # else not paired with a hub yet (HAN_PAIR): nothing to poll
                await _wake(radio, hub, meter, device.endpoint.handle, han_send)
            if _ledger.events is not None:
                _ledger.events.flush()  # at the end of the wake, so the log's write falls inside it
        except Exception as error:  # a flash write failing must not stop the meter waking
            print("gas meter wake:", error)
        meterfw.unload("gsme_poll", "han_poll")  # a sleeping meter's RAM does not hold its wake


async def _wake(radio, hub, meter, handle, han_send):
    # one poll cycle with the hub; its own coroutine, so nothing of it stays referenced while asleep
    global _inbox, _radio
    from meterfw.gsme_poll import PollCycle, WakeRadio

    _radio = WakeRadio(_ledger)
    cycle = PollCycle(meter, handle)
    message = cycle.start()
    _inbox = (hub, asyncio.Event(), [])
    try:
        while message is not None:
            _inbox[1].clear()
            if not await han_send(radio, hub, message, _ledger):
                return  # the hub is not there: sleep, and poll again at the next wake
            try:
                await asyncio.wait_for(_inbox[1].wait(), _LISTEN_S)
            except asyncio.TimeoutError:
                return
            message = cycle.answer(_inbox[2].pop(0))
    finally:
        _inbox = None
        _radio = None
