"""The ``run_dialer.py`` command line: one module per group of subcommands."""

from .main import main

__all__ = ["main"]
