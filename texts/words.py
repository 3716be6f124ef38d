"""What texts say: the consultation line's replies, the advice for a scam's tell-tales, and
the warning text. Pure, apart from reading the catalog once.

The replies and the advice live in the hotline's catalog (``texts:`` in
``hotline/menus.yaml`` or ``hotline.menus``), the warning text's words in the
warning catalog (``dialer/warnings.yaml``: ``text`` per fraud type and the
``text`` message), both written by the project from the police material.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sip_config.load import DEFAULT_CONFIG
from sip_config.schema import Hours
from yamlfile import FileProblems, Problem, compose_mapping, dotted, line_of

__all__ = ["MAX_REPLY", "Advice", "TextBook", "TextBookError", "clean_reply", "hours_label",
           "load_text_book", "opens_label"]

MAX_REPLY = 1000
"""Characters in an operator's reply: what one SIP MESSAGE to an SMS gateway carries well."""
REPLIES = ("after_hours", "in_hours")
REPLY_WORDS = {"center": "", "hours": "", "opens": ""}


class TextBookError(FileProblems):
    """The text book cannot be used; ``problems`` says where and why."""


@dataclass(frozen=True)
class Advice:
    fraud_type: str
    keyword: str
    text: str


@dataclass(frozen=True)
class _Rule:
    fraud_type: str
    keywords: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class TextBook:
    path: Path
    replies: dict[str, str]
    rules: tuple[_Rule, ...]

    def advice_for(self, body: str) -> Advice | None:
        """The advice for the first tell-tale word in ``body`` (the longer word where two
        start at the same place), or None."""
        best: tuple[int, int, _Rule, str] | None = None
        for rule in self.rules:
            for word in rule.keywords:
                at = body.find(word)
                if at >= 0 and (best is None or (at, -len(word)) < (best[0], best[1])):
                    best = (at, -len(word), rule, word)
        if best is None:
            return None
        _, _, rule, word = best
        return Advice(rule.fraud_type, word, rule.text.format(keyword=word))

    def reply(self, *, open_now: bool, center: str, hours: str, opens: str,
              advice: Advice | None) -> str:
        """The automatic answer to a new consultation: in operator hours a short
        acknowledgement; outside them when operators answer and 110, and the advice."""
        key = "in_hours" if open_now else "after_hours"
        text = self.replies[key].format(center=center, hours=hours, opens=opens)
        if advice is not None and not open_now:
            text += advice.text
        return text


def clean_reply(text: str) -> str:
    """An operator's reply as it is sent (whitespace runs made one space); ValueError with
    one sentence when it is empty or too long (``sms reply`` and MQTT ``sms/reply``)."""
    clean = " ".join(text.split())
    if not clean:
        raise ValueError("the reply is empty")
    if len(clean) > MAX_REPLY:
        raise ValueError(f"the reply has {len(clean)} characters; at most {MAX_REPLY} go in a text")
    return clean


def hours_label(usual: Hours) -> str:
    """``每天08:00-22:00``."""
    return f"每天{usual.start:%H:%M}-{usual.end:%H:%M}"


def opens_label(now: datetime, opens: datetime | None) -> str:
    """When operators are next there, as people say it: 今天/明天/后天 08:00, or 12月3日08:00."""
    if opens is None:
        return "下一个工作时间"
    days = (opens.date() - now.date()).days
    day = {0: "今天", 1: "明天", 2: "后天"}.get(days, f"{opens.month}月{opens.day}日")
    return f"{day}{opens:%H:%M}"


def load_text_book(path: Path, fallback: Path | None = None) -> TextBook:
    """The ``texts:`` section of a hotline catalog; raises :class:`TextBookError` with a
    problem (file, line, key) per fault. A catalog without the section takes the one of
    ``fallback`` (the shipped catalog) when given."""
    name = str(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TextBookError([Problem(name, 0, "(file)", f"cannot be read: {exc}")]) from None
    tree, lines, problems = compose_mapping(name, source, example=str(DEFAULT_CONFIG))
    if problems:
        raise TextBookError(problems)
    if "texts" not in tree and fallback is not None and fallback != path:
        return load_text_book(fallback)
    return _Reader(path, lines).book(tree.get("texts"))


class _Reader:
    def __init__(self, path: Path, lines: dict[Any, int]) -> None:
        self.path, self.lines = path, lines
        self.problems: list[Problem] = []

    def fault(self, where: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(str(self.path), line_of(where, self.lines), dotted(where),
                                     message))

    def book(self, raw: Any) -> TextBook:
        if not isinstance(raw, dict):
            self.fault(("texts",), "needs the replies and the advice of the SMS line")
            raise TextBookError(self.problems)
        replies = self.replies(raw.get("replies"))
        rules = self.rules(raw.get("advice") or {})
        if self.problems:
            raise TextBookError(self.problems)
        return TextBook(self.path, replies, rules)

    def replies(self, raw: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        if not isinstance(raw, dict):
            self.fault(("texts", "replies"), f"needs the replies {', '.join(REPLIES)}")
            return out
        for key in REPLIES:
            value = raw.get(key)
            where = ("texts", "replies", key)
            if not isinstance(value, str) or not value.strip():
                self.fault(where, "needs a text")
                continue
            try:
                value.format(**REPLY_WORDS)
            except (KeyError, IndexError, ValueError) as exc:
                self.fault(where, f"has a placeholder that is not {{center}}, {{hours}} or "
                                  f"{{opens}} ({exc})")
                continue
            out[key] = " ".join(value.split())
        return out

    def rules(self, raw: Any) -> tuple[_Rule, ...]:
        if not isinstance(raw, dict):
            self.fault(("texts", "advice"), "must map fraud type ids to keywords and a text")
            return ()
        rules = []
        for type_id, entry in raw.items():
            where = ("texts", "advice", type_id)
            words = entry.get("keywords") if isinstance(entry, dict) else None
            text = entry.get("text") if isinstance(entry, dict) else None
            if not isinstance(words, list) or not words or not all(
                    isinstance(w, str) and w.strip() for w in words):
                self.fault(where, "needs keywords: a list of words")
                continue
            if not isinstance(text, str) or not text.strip():
                self.fault(where, "needs a text")
                continue
            try:
                text.format(keyword="")
            except (KeyError, IndexError, ValueError) as exc:
                self.fault(where, f"text has a placeholder that is not {{keyword}} ({exc})")
                continue
            rules.append(_Rule(str(type_id), tuple(w.strip() for w in words),
                               " ".join(text.split())))
        return tuple(rules)
