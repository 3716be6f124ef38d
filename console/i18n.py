"""The console's two languages through gettext: English in the source, Simplified Chinese
from ``locale/zh/LC_MESSAGES/console.po``.

The catalog is the standard ``.po`` file a translator edits; it is compiled in memory when
the console starts (Babel), so no build step stands between an edit and the pages.
``tools/catalog.py --check`` (run by ``tests/test_console_http.py``) checks that every message
the templates and the code use, and every refusal pattern of ``center`` and the warning
requests, has its Chinese with the same placeholders.
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

__all__ = ["CATALOG", "LANGUAGES", "N_", "translations"]

LANGUAGES = ("zh", "en")
CATALOG = Path(__file__).resolve().parent / "locale" / "zh" / "LC_MESSAGES" / "console.po"


def N_(message: str) -> str:
    """Marks a message for the catalog where it is written; it is translated where shown."""
    return message


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The messages of ``language`` (English: the source text itself)."""
    if language == "en":
        return gettext.NullTranslations()
    with CATALOG.open("rb") as f:
        catalog = read_po(f, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
