"""TipRing: open firmware for a SIP analog telephone adapter (Raspberry Pi + SLIC)."""

__version__ = "0.1.0"
