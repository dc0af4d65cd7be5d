# What a board does once, at boot or when commissioning finishes: its security state read from flash into
# a pipeline, and its role's device started behind it. main.py imports this only for that and drops it
# again (meterfw.unload's way), so its code is not RAM the running board pays for.
import json

import hal
from meterfw import link

GAS_FOLDER = "gas"  # the GSME's register and valve (meterfw.gsme)


def load_security(role):
    """(GbcsEndpoint or None, link error code or None, Commissioner or None, CommandRouter or None). A board that is not
    commissioned, or whose stored state is damaged, refuses GBCS frames saying why, rather than run on
    half a state; a damaged one refuses commissioning too (a lab repairs its flash first)."""
    from meterfw import commissioning, store

    try:
        storage = store.FileStorage(store.FOLDER)  # identity, anchors, counters: one record a file
        commissioner = commissioning.Commissioner(storage, hal.random_bytes if hal.random_bytes(1) else None)
        counters = store.CounterStore(storage, commissioner.anchors)
    except (store.StoreError, OSError) as error:
        print("security state damaged, refusing commands:", error)
        return None, link.ERR_STATE_DAMAGED, None, None
    if commissioner.state != commissioning.COMMISSIONED:
        return None, link.ERR_NOT_COMMISSIONED, commissioner, None
    from meterfw.endpoint import CommandRecorder, CommandRouter, CredentialsOnDemand, GbcsEndpoint, RejectLog
    from meterfw.pipeline import DevicePipeline
    from meterfw.response import Responder

    from meterfw.consent import ConsentStore

    anchors = commissioner.anchors
    device_id, ds_private_key, ka_private_key, suite = commissioner.identities.identity
    reject_log = RejectLog()
    credentials = CredentialsOnDemand(anchors, counters)
    try:
        consents = ConsentStore(storage, hal.unix_time)  # the meter's clock decides when a consent expires
    except store.StoreError as error:
        print("consent records damaged, refusing commands:", error)
        return None, link.ERR_STATE_DAMAGED, commissioner, None
    router = CommandRouter(credentials, CommandRecorder())  # start_device() adds the role's device
    pipeline = DevicePipeline(device_id, ka_private_key, anchors, counters, suite, log=reject_log,
                              validator=router.validate, consents=consents,
                              device_type=role if role in ("esme", "gsme", "chf") else None)
    responder = Responder(device_id, ds_private_key, ka_private_key, anchors, suite)
    endpoint = GbcsEndpoint(pipeline, responder, router.execute, reject_log)
    return endpoint, None, commissioner, router


def start_device(role, router, endpoint, open_esme, close_esme):
    """(link error code or None, the device, its metrology or None): the role's device behind the
    pipeline. An ESME's meter (registers, tariff, relay) is loaded from its flash for each use
    (meterfw.lazy: open_esme and close_esme, main.py's, so nothing here stays referenced); a gas meter is
    small and stays; a hub starts its GPF. Started after the commissioning code is unloaded: on a 108 KiB
    board both at once do not fit. A damaged record gives the error code (the board then refuses
    commands)."""
    if role == "gsme":
        return start_gas_meter(router, endpoint)
    if role == "chf":
        import gas_io

        return gas_io.start_proxy(router), None, None
    if role != "esme":
        return None, None, None
    from meterfw import store
    from meterfw.lazy import LazyDevice

    try:
        meter = LazyDevice(open_esme, close_esme, hal.unix_time, hal.metrology().take_mwh)
    except (store.StoreError, OSError) as error:
        print("meter records damaged, refusing commands:", error)
        return link.ERR_STATE_DAMAGED, None, None
    router.device = meter
    return None, meter, None


def start_gas_meter(router, endpoint):
    # The battery gas meter: its ledger's costs from the board's power profile (board.json), its pipeline
    # asking that ledger before each MAC check and verify.
    from meterfw import ledger, store
    from meterfw.gsme import GasMeter, default_budget

    try:
        with open("board.json") as f:
            costs = ledger.costs_from(json.load(f)["power"])
        energy = ledger.EnergyLedger(costs, *default_budget(costs), hal.unix_time)
        meter = GasMeter(store.FileStorage(GAS_FOLDER), hal.supply_switch("valve"), hal.unix_time, energy)
    except (OSError, ValueError, KeyError, store.StoreError) as error:
        print("gas meter cannot start (its records, or board.json's power profile):", error)
        return link.ERR_STATE_DAMAGED, None, None
    router.device = meter
    endpoint.pipeline.budget = energy.allow
    from boardconfig import read_config

    if read_config().get("event_log") is True:  # a lab calibrating the power profile (meterfw.event_log)
        from meterfw.event_log import EventLog

        energy.events = EventLog(hal.ticks_ms)
    return None, meter, hal.metrology()


def commissioned_identity(commissioner):
    # What a commissioned board says of itself, kept instead of the Commissioner (see DeviceCore.identity).
    device_id, ds_public_key, ka_public_key = commissioner.public_keys()
    return device_id, ds_public_key, ka_public_key, commissioner.random_bytes is not None
