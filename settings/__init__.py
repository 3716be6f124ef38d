"""Everything the operators' files say, read once: ``dialer.yaml`` and the files it names.

:func:`load_settings` reads the config, the warning catalog, the voice menus and
the SMS line's text book, checks them together and gives one frozen
:class:`Settings`; or raises :class:`~sip_config.ConfigError` with every problem
of every file, one ``file:line: key: problem`` line each (what ``check-config``
prints). The engine and the commands take their objects from it and read none
of these files again.
"""

from .load import Settings, load_settings, settings_for

__all__ = ["Settings", "load_settings", "settings_for"]
