"""The console's message catalog: every message its templates and code use, and its Chinese.

    python tools/catalog.py --check    # exit 1 naming each message without Chinese
    python tools/catalog.py --update   # add new messages (empty) to the .po, drop unused ones

Messages are found as Babel finds them: ``_("…")`` and ``N_("…")`` calls in the console's
Python modules and templates (``jinja2.ext.babel_extract``), and the refusals the console
shows from the layers under it: the patterns of ``Invalid(…)`` in ``center/`` and of
``RequestError(…)`` in ``dialer/requests.py``. A translation must use the same
placeholders as its message.
"""

from __future__ import annotations

import argparse
import string
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
CONSOLE = ROOT / "console"
PO = CONSOLE / "locale" / "zh" / "LC_MESSAGES" / "console.po"
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "", "trimmed": "false"}}
KEYWORDS = {"_": None, "N_": None}
REFUSALS = [  # (folder, files, the calls whose first argument is a message)
    (ROOT / "center", [("**.py", "python")], {"Invalid": None}),
    (ROOT / "dialer", [("requests.py", "python")], {"RequestError": None}),
]
HEADER = ("# The duty officers' console in Simplified Chinese.\n"
          "# Kept by tools/catalog.py: --update adds new messages, --check finds gaps.")


def extract() -> dict[str, list[str]]:
    """Every message → where it is used."""
    found: dict[str, list[str]] = {}
    for folder, methods, keywords in [(CONSOLE, METHODS, KEYWORDS), *REFUSALS]:
        for filename, lineno, message, _comments, _context in extract_from_dir(
                folder, methods, OPTIONS, keywords):
            if isinstance(message, str) and message:
                found.setdefault(message, []).append(f"{folder.name}/{filename}:{lineno}")
    return found


def placeholders(text: str) -> set[str] | str:
    """The names a ``str.format`` pattern fills, or why it is not one."""
    try:
        return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
    except ValueError as exc:
        return f"not a format pattern ({exc})"


def read() -> Catalog:
    with PO.open("rb") as f:
        return read_po(f, locale="zh_Hans_CN")


def missing() -> list[tuple[str, list[str], str]]:
    """Messages without Chinese, or whose Chinese has other placeholders: (message, where
    it is used, what is wrong)."""
    catalog = read()
    gaps = []
    for message, where in sorted(extract().items()):
        kept = catalog.get(message)
        if not (kept and kept.string):
            gaps.append((message, where, "no Chinese"))
        elif (found := placeholders(kept.string)) != placeholders(message):
            shown = sorted(found) if isinstance(found, set) else found
            gaps.append((message, where, f"the Chinese has placeholders {shown}"))
    return gaps


def update() -> int:
    used = extract()
    old = read()
    new = Catalog(locale="zh_Hans_CN", project="antifraud-dialer console", version="1",
                  domain="console", header_comment=HEADER, copyright_holder="",
                  msgid_bugs_address="", last_translator="", language_team="zh_Hans_CN",
                  creation_date=old.creation_date, revision_date=old.revision_date, fuzzy=False)
    for message, where in sorted(used.items()):
        kept = old.get(message)
        new.add(message, kept.string if kept else "",
                locations=[(w.rsplit(":", 1)[0], int(w.rsplit(":", 1)[1])) for w in where])
    with PO.open("wb") as f:
        write_po(f, new, width=100, omit_header=False, sort_output=True)
    text = PO.read_text(encoding="utf-8")
    for placeholder in ('"Report-Msgid-Bugs-To: EMAIL@ADDRESS\\n"\n',
                        '"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\\n"\n',
                        '"Last-Translator: FULL NAME <EMAIL@ADDRESS>\\n"\n'):
        text = text.replace(placeholder, "")
    PO.write_text(text, encoding="utf-8")
    return sum(1 for m in new if m.id and not m.string)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--check", action="store_true")
    what.add_argument("--update", action="store_true")
    args = parser.parse_args()
    if args.update:
        PO.parent.mkdir(parents=True, exist_ok=True)
        if not PO.exists():
            PO.write_text("", encoding="utf-8")
        left = update()
        print(f"{PO.relative_to(ROOT)}: {left} messages without Chinese")
        return 0
    gaps = missing()
    for message, where, problem in gaps:
        print(f"{where[0]}: {problem} for {message!r}")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
