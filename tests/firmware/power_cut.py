# A flash that loses power just before its Nth change: the firmware tests cut the power before each
# change an operation makes, in turn, and check what a restart finds. Runs under pytest and on MicroPython.
from meterfw import store


class PowerCut(Exception):
    pass


class CuttingStorage(store.MemoryStorage):
    """Memory storage that loses power just before its Nth change (write, rename or remove)."""

    def __init__(self, files=None, cut_before=None):
        store.MemoryStorage.__init__(self)
        if files:
            self.files.update(files)
        self.changes = 0
        self.cut_before = cut_before

    def _change(self):
        self.changes += 1
        if self.changes == self.cut_before:
            raise PowerCut()

    def write(self, name, data):
        self._change()
        store.MemoryStorage.write(self, name, data)

    def rename(self, src, dst):
        self._change()
        store.MemoryStorage.rename(self, src, dst)

    def remove(self, name):
        self._change()
        store.MemoryStorage.remove(self, name)
