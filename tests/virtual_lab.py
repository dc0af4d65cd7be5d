"""Commissioned-looking virtual boards without an SMKI, for tests of other things (the radio, the pipeline
on a board): meterlab.boards.provision writes an identity and the initial anchors (root, recovery, ACB,
transitional CoS, WAN provider, and here also a supplier and a network operator) straight onto the
flash. The keys are the fixed ones of tests/firmware/pipeline_fakes.py."""
from meterfw import roles
from meterlab.boards.descriptions import load_board
from meterlab.boards.provision import provision_state
from meterlab.boards.virtual import deploy_to_state
from pipeline_fakes import DEVICE, DEVICE_DS, DEVICE_KA, PARTY_IDS, make_anchors, public


def initial_anchors():
    fakes = make_anchors()
    out = {role: fakes.anchor(role) for role in PARTY_IDS}
    extra = public(bytes(31) + b"\x31")
    out[roles.ROOT] = (bytes(8), extra, extra)
    out[roles.RECOVERY] = (bytes.fromhex("90b3d51f30000001"), public(bytes(31) + b"\x32"), extra)
    out[roles.WAN_PROVIDER] = (bytes.fromhex("90b3d51f30000007"), public(bytes(31) + b"\x33"), extra)
    return out


def provisioned(state, board="esp32", role="esme", device_id=DEVICE):
    """state, with the firmware deployed and a device identity and anchors on its flash."""
    deploy_to_state(state, load_board(board), role)
    provision_state(state, device_id, DEVICE_DS, DEVICE_KA, initial_anchors())
    return state
