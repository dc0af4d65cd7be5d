"""The DCC's register of commissioned devices (design.md, "Identities"): which devices exist, their role,
their DS and KA certificates and the device CA that issued them. SQLite, one file: DCC_DIR/dcc.sqlite.
Only a device in the register is part of the system (property 7)."""
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    eui64 TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    ds_certificate BLOB NOT NULL,
    ka_certificate BLOB NOT NULL,
    device_ca TEXT NOT NULL,
    commissioned_at REAL NOT NULL
)
"""


class RegisterError(Exception):
    pass


class DeviceRegister:
    def __init__(self, dcc_dir):
        folder = Path(dcc_dir)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "dcc.sqlite"
        self._db = sqlite3.connect(self.path)
        self._db.execute(SCHEMA)
        self._db.commit()

    def close(self):
        self._db.close()

    def register(self, eui64, role, ds_certificate, ka_certificate, device_ca):
        try:
            with self._db:
                self._db.execute("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)",
                                 (eui64.hex(), role, ds_certificate, ka_certificate, device_ca, time.time()))
        except sqlite3.IntegrityError:
            raise RegisterError(f"device {eui64.hex()} is registered already") from None

    def register_many(self, devices, role, device_ca):
        """register() for each (eui64, DS certificate, KA certificate) of devices, in one transaction:
        all or none."""
        now = time.time()
        try:
            with self._db:
                self._db.executemany("INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?)",
                                     [(eui64.hex(), role, ds, ka, device_ca, now) for eui64, ds, ka in devices])
        except sqlite3.IntegrityError:
            raise RegisterError("a device in the batch is registered already") from None

    def device(self, eui64):
        row = self._db.execute("SELECT eui64, role, ds_certificate, ka_certificate, device_ca, commissioned_at "
                               "FROM devices WHERE eui64 = ?", (eui64.hex(),)).fetchone()
        if row is None:
            return None
        return {"eui64": bytes.fromhex(row[0]), "role": row[1], "ds_certificate": row[2], "ka_certificate": row[3],
                "device_ca": row[4], "commissioned_at": row[5]}

    def devices(self):
        return [self.device(bytes.fromhex(row[0]))
                for row in self._db.execute("SELECT eui64 FROM devices ORDER BY eui64")]
