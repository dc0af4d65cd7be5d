"""Write a device identity and trust anchors straight onto a virtual board's flash (its state folder).

This stands in for commissioning until the SMKI work lands (there the board makes its own key pairs and
receives its anchors over the wire): labs and tests that need a working meter on a virtual board now
use it. It writes the very records the firmware reads (meterfw.store), with the same atomic
write-verify-rename, into STATE/flash/security. The board must be stopped: a running virtual board has
its flash loaded and would not see the change.
"""
from pathlib import Path

from meterfw import roles, store


def security_storage(state_dir):
    """The board's security folder as meterfw.store storage (created if missing)."""
    return store.FileStorage(str(Path(state_dir) / "flash" / store.FOLDER))


def provision_state(state_dir, device_id, ds_private_key, ka_private_key, anchors, suite="gbcs"):
    """Install the identity (8-byte device ID, 32-byte DS and KA private keys, MAC suite) and anchors,
    {role: (party_id, ds_public_key, ka_public_key)} with 64-byte x || y keys. ValueError for a bad value
    (meterfw.store checks them); what was installed before the bad one stays installed."""
    storage = security_storage(state_dir)
    store.IdentityStore(storage).install(device_id, ds_private_key, ka_private_key, suite)
    trust_anchors = store.TrustAnchorStore(storage)
    for role in sorted(anchors):
        party_id, ds_public_key, ka_public_key = anchors[role]
        trust_anchors.install(role, party_id, ds_public_key, ka_public_key)


def stored_counters(state_dir):
    """{role: counter} for every role with a stored counter, as the board's flash holds them now. Like
    the board's next boot, loading removes uncommitted leftovers (.new files)."""
    storage = security_storage(state_dir)
    counters = store.CounterStore(storage, store.TrustAnchorStore(storage))
    return {role: counters.counter(role) for role in roles.ALL if counters.counter(role)}
