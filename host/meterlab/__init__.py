"""meterlab: the host side of the GB smart metering security lab (DCC, parties, SMKI, board tools)."""
from meterfw import __version__

__all__ = ["__version__"]
