"""The demo: the engine and a simulated carrier (victims' phones, a duty officer) on loopback."""

from .run import PHONES, Phone, run_demo

__all__ = ["PHONES", "Phone", "run_demo"]
