"""A lab engineer's day with one meter, on the command line only: SMKI, a commissioned ESME on a virtual
board, a supplier's read, tariff and supply commands through the DCC, a network operator anchored by the
DCC's recovery party, and a third party that reads only with the consent given at the in-home port."""
import json
import os
import re
import subprocess
import sys

import pytest

from meterlab.boards.virtual import VirtualBoard

pytestmark = pytest.mark.virtual
SUPPLIER, DNO, APP = "90b3d51f30010000", "90b3d51f30020000", "90b3d51f30070000"


def lab(tmp_path, parties):
    """The meterlab command, run in tmp_path, after an SMKI with a one-device CA and these parties."""
    env = {**os.environ, "METERLAB_SMKI_PASSPHRASE": "cli meter", "METERLAB_RUNTIME_DIR": str(tmp_path / "rt")}

    def meterlab(*args, ok=True):
        result = subprocess.run([sys.executable, "-m", "meterlab", *args], capture_output=True, text=True,
                                timeout=120, env=env, cwd=tmp_path)
        if ok:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    meterlab("smki", "init", "smki", "--custodians", "1", "--threshold", "1")
    meterlab("smki", "device-ca", "smki", "batch", "--quota", "1", "--share",
             str(tmp_path / "custodian-shares" / "custodian-1.share"))
    for name, role, eui in parties:
        meterlab("smki", "party", "smki", "--name", name, "--role", role, "--eui64", eui)
    return meterlab


def test_a_meters_users_on_the_command_line(tmp_path):
    meterlab = lab(tmp_path, (("SUPPLIER A", "supplier", SUPPLIER), ("DNO", "network-operator", DNO),
                              ("ENERGY APP", "other", APP)))
    board = VirtualBoard(tmp_path / "meter", role="esme", board="rp2040", home=True, load_watts=36_000,
                         log=open(tmp_path / "meter.log", "w"))
    with board:
        url = board.url
        where = ("--smki", "smki", "--dcc", "dcc")
        meterlab("commission", url, "--role", "esme", "--smki", "smki", "--device-ca", "batch", "--dcc", "dcc")
        refused = meterlab("read", url, "--as", SUPPLIER, *where, ok=False)
        assert refused.returncode == 1 and "owned by another supplier" in refused.stderr  # not its meter yet
        assert "the DCC's register updated" in meterlab("supplier", "take-ownership", url, "--supplier", SUPPLIER,
                                                       *where).stdout
        first = meterlab("read", url, "--as", SUPPLIER, *where).stdout
        assert "opened here (the DCC carried ciphertext)" in first and "supply            connected" in first
        assert "tariff            from 00:00 25.000 p/kWh" in first and "daily totals, 31 days" in first

        set_tariff = meterlab("tariff", url, "--as", SUPPLIER, *where, "--rate", "00:00=12.5", "--rate", "16:00=35")
        assert "from 16:00 35.000 p/kWh; the meter's signed answer verified" in set_tariff.stdout
        bad = meterlab("tariff", url, "--as", SUPPLIER, *where, "--rate", "07:00=30", ok=False)
        assert bad.returncode == 1 and "the meter would refuse this tariff: blocks must start at half-hour 0" in bad.stderr
        meterlab("supply", url, "off", "--as", SUPPLIER, *where)
        assert json.loads((tmp_path / "meter" / "gpio.json").read_text()) == {"supply_relay": 0}
        off = meterlab("read", url, "--as", SUPPLIER, *where, "--months", "0").stdout
        assert "supply            DISCONNECTED" in off and "from 16:00 35.000 p/kWh" in off
        meterlab("supply", url, "on", "--as", SUPPLIER, *where)
        assert json.loads((tmp_path / "meter" / "gpio.json").read_text()) == {"supply_relay": 1}

        # prepayment: the meter's debt so far means no credit, so it cuts itself off; a top-up restores it
        meterlab("credit", url, "prepayment", "--as", SUPPLIER, *where)
        assert json.loads((tmp_path / "meter" / "gpio.json").read_text()) == {"supply_relay": 0}
        assert "SUPPLY CUT: no credit" in meterlab("read", url, "--as", SUPPLIER, *where, "--months", "0").stdout
        assert "topped up by 2000.00 p" in meterlab("credit", url, "top-up", "--pence", "2000", "--as", SUPPLIER,
                                                    *where).stdout
        assert json.loads((tmp_path / "meter" / "gpio.json").read_text()) == {"supply_relay": 1}
        topped = meterlab("read", url, "--as", SUPPLIER, *where, "--months", "0").stdout
        assert "payment           prepayment" in topped and "CUT" not in topped
        not_low = meterlab("credit", url, "emergency", "--as", SUPPLIER, *where, ok=False)
        assert not_low.returncode == 1 and "emergency credit is not available" in not_low.stderr
        meterlab("credit", url, "credit", "--as", SUPPLIER, *where)
        assert "payment           credit" in meterlab("read", url, "--as", SUPPLIER, *where, "--months", "0").stdout

        # the network operator: unknown to the meter until the DCC's recovery party anchors it; then it
        # reads energy (not the account), and its tariff stops at the DCC
        assert "no trust anchor" in meterlab("read", url, "--as", DNO, *where, ok=False).stderr
        meterlab("dcc", "install-anchor", url, "--party", DNO, "--role", "network-operator", *where)
        dno_read = meterlab("read", url, "--as", DNO, *where).stdout
        assert "import register" in dno_read and "balance" not in dno_read and "supply" not in dno_read
        refused = meterlab("tariff", url, "--as", DNO, *where, "--rate", "00:00=1", ok=False)
        assert "the DCC refused the request: a network operator may not send 0x0019" in refused.stderr

        # the third party: nothing without consent; with it, at most its months, energy only
        assert "no trust anchor, and no consent" in meterlab("read", url, "--as", APP, *where, ok=False).stderr
        meterlab("consent", "grant", board.home_url, "--party", APP, "--months", "3", "--days", "30", "--smki", "smki")
        app_read = meterlab("read", url, "--as", APP, *where, "--months", "3").stdout
        assert "daily totals" in app_read and "balance" not in app_read and "tariff" not in app_read
        assert "outside the consent's scope" in meterlab("read", url, "--as", APP, *where, "--months", "4",
                                                         ok=False).stderr
        meterlab("consent", "revoke", board.home_url, "--party", APP)
        assert "no consent" in meterlab("read", url, "--as", APP, *where, "--months", "1", ok=False).stderr
    assert meterlab("dcc", "audit", "verify", "dcc").stdout.count("head: entry") == 1


def test_a_gas_meters_register_and_valve_on_the_command_line(tmp_path):
    # A board commissioned as a gas meter: its pipeline charges the energy ledger built from the board's
    # power profile, its register fills from the simulated household's gas, and the valve closes.
    meterlab = lab(tmp_path, (("SUPPLIER A", "supplier", SUPPLIER),))
    board = VirtualBoard(tmp_path / "gas", role="gsme", board="rp2040", log=open(tmp_path / "gas.log", "w"))
    with board:
        url, where = board.url, ("--smki", "smki", "--dcc", "dcc")
        meterlab("commission", url, "--role", "gsme", "--smki", "smki", "--device-ca", "batch", "--dcc", "dcc")
        meterlab("supplier", "take-ownership", url, "--supplier", SUPPLIER, *where)
        read = meterlab("gas", "read", url, "--as", SUPPLIER, *where).stdout
        assert " m3, valve open" in read and "opened here" in read
        assert json.loads((tmp_path / "gas" / "gpio.json").read_text()) == {"valve": 1}
        assert "valve closed; the meter's signed answer verified" in meterlab("gas", "valve", url, "close", "--as",
                                                                          SUPPLIER, *where).stdout
        assert json.loads((tmp_path / "gas" / "gpio.json").read_text()) == {"valve": 0}
        assert "valve CLOSED" in meterlab("gas", "read", url, "--as", SUPPLIER, *where).stdout
        refused = meterlab("tariff", url, "--as", SUPPLIER, *where, "--rate", "00:00=10", ok=False)
        assert "the DCC refused the request: a gsme does not run 0x0019" in refused.stderr  # not the gas meter's
        battery = meterlab("battery", url).stdout  # its ledger: what today's commands cost it
        assert re.search(r"valve +1 x +0\.720 J", battery)
        assert re.search(r"signature_verify +2 x", battery)  # the change of supplier and the close
        assert re.search(r"mac_check +4 x", battery)  # those, and the two reads: the tariff never came
        years = [float(y) for y in re.findall(r"([\d.]+) years", battery)]
        # a Pico's RP2040 sleeps at 0.18 mA, the board at 0.8 mA: about 9.7 and 2.4 years on the D cell
        assert len(years) == 2 and 9 < years[0] < 10.5 and 2 < years[1] < 2.6
    assert (tmp_path / "gas" / "flash" / "gas" / "gas.0").is_file()  # the valve's state is on its flash
