"""The hotline's voice menus: read once from YAML into frozen objects, every reference checked.

The shipped ``hotline/menus.yaml`` (or ``hotline.menus``) holds the prompts
(id → text, or text and a recorded ``wav``) and a tree of menus in the spirit
of FreeSWITCH's IVR menus: each has a long and a short greeting, options
(digits → enter a menu, say a prompt, leave a message), a digit timeout, an
inter-digit timeout, and how many invalid digits or timeouts in a row end the
call with the goodbye. ``*`` repeats and ``#`` goes back in every menu.

:func:`load_menus` raises :class:`MenuError` with one :class:`~yamlfile.Problem`
(file, line, key, message) per fault: a prompt or a menu that does not exist,
a menu no path reaches, a bad digit.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audio import Prompt
from yamlfile import FileProblems, Problem, compose_mapping, dotted, line_of

__all__ = ["DEFAULT_MENUS", "Action", "Kind", "Menu", "MenuBook", "MenuError", "load_menus"]

DEFAULT_MENUS = Path(__file__).resolve().parent / "menus.yaml"
REPEAT, BACK = "*", "#"
MESSAGE_PROMPTS = ("message_intro", "message_thanks", "message_failed")
BEEP = "beep"  # the tone before a message, made by the engine


class MenuError(FileProblems):
    """The voice menus cannot be used; ``problems`` says where and why."""


class Kind(enum.Enum):
    MENU = "menu"  # enter a sub-menu
    SAY = "say"  # play an information prompt, then the menu's short greeting
    MESSAGE = "message"  # record a message for a callback


@dataclass(frozen=True)
class Action:
    kind: Kind
    target: str = ""  # the menu or the prompt
    fraud_type: str | None = None  # what the caller asked about (statistics)


@dataclass(frozen=True)
class Menu:
    id: str
    greeting_long: str
    greeting_short: str
    options: dict[str, Action]
    timeout_s: float
    inter_digit_s: float
    max_failures: int
    max_timeouts: int
    invalid: str = ""
    """This menu's invalid-input prompt (e.g. naming its range of digits); "" the book's."""

    def matches(self, digits: str) -> tuple[Action | None, bool]:
        """(the option ``digits`` names, whether a longer option could still follow)."""
        longer = any(key != digits and key.startswith(digits) for key in self.options)
        return self.options.get(digits), longer


@dataclass(frozen=True)
class MenuBook:
    path: Path
    entry: str
    welcome: str
    goodbye: str
    invalid: str
    prompts: dict[str, tuple[str, Path | None]]  # id → (text, recording)
    menus: dict[str, Menu]

    def audio_prompts(self) -> list[Prompt]:
        """What ``prompts build`` makes: ``ivr-<id>`` for each prompt, and the beep."""
        spoken = [Prompt(prompt_file(pid), text, wav) for pid, (text, wav) in self.prompts.items()]
        return [*spoken, Prompt(prompt_file(BEEP), "", tone_s=0.5)]

    @property
    def fraud_types(self) -> dict[str, str]:
        """fraud type id → the prompt that explains it."""
        return {a.fraud_type: a.target for m in self.menus.values() for a in m.options.values()
                if a.fraud_type}


def prompt_file(prompt_id: str) -> str:
    return f"ivr-{prompt_id.replace('_', '-')}"


_SETTINGS = {"timeout_s": (10.0, 1, 60), "inter_digit_s": (3.0, 0.5, 20), "max_failures": (3, 1, 10),
             "max_timeouts": (3, 1, 10)}


def load_menus(path: Path | None = None) -> MenuBook:
    path = path or DEFAULT_MENUS
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MenuError([Problem(name, 0, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MenuError([Problem(name, 0, "(file)", f"cannot be read: {exc}")]) from None
    tree, lines, problems = compose_mapping(name, text, example=str(DEFAULT_MENUS))
    if problems:
        raise MenuError(problems)
    return _Reader(path, tree, lines).book()


class _Reader:
    def __init__(self, path: Path, tree: dict[str, Any], lines: dict[Any, int]) -> None:
        self.path, self.tree, self.lines = path, tree, lines
        self.problems: list[Problem] = []

    def fault(self, where: tuple[Any, ...], message: str) -> None:
        self.problems.append(Problem(str(self.path), line_of(where, self.lines), dotted(where), message))

    def book(self) -> MenuBook:
        known = {"settings", "entry", "welcome", "goodbye", "invalid", "prompts", "menus", "texts"}
        # texts: the SMS consultation line's replies and advice (read by texts.advice)
        for key in self.tree:
            if key not in known:
                self.fault((key,), f"unknown key {key!r} (known keys: {', '.join(sorted(known))})")
        settings = self.settings(self.tree.get("settings") or {}, ("settings",), None)
        prompts = self.read_prompts()
        menus = self.read_menus(settings)
        entry = self.text("entry", "main")
        for key in ("welcome", "goodbye", "invalid"):
            self.prompt_ref(self.text(key, key), (key,), prompts)
        if entry not in menus:
            self.fault(("entry",), f"there is no menu {entry!r}")
        for menu in menus.values():
            where = ("menus", menu.id)
            self.prompt_ref(menu.greeting_long, (*where, "greeting_long"), prompts)
            self.prompt_ref(menu.greeting_short, (*where, "greeting_short"), prompts)
            if menu.invalid:
                self.prompt_ref(menu.invalid, (*where, "invalid"), prompts)
            for digits, action in menu.options.items():
                at = (*where, "options", digits)
                if action.kind is Kind.MENU and action.target not in menus:
                    self.fault(at, f"there is no menu {action.target!r}")
                elif action.kind is Kind.SAY:
                    self.prompt_ref(action.target, at, prompts)
                elif action.kind is Kind.MESSAGE:
                    for pid in MESSAGE_PROMPTS:
                        self.prompt_ref(pid, at, prompts, why=" (a message needs it)")
        self.reachability(entry, menus)
        if self.problems:
            raise MenuError(self.problems)
        return MenuBook(self.path, entry, self.text("welcome", "welcome"),
                        self.text("goodbye", "goodbye"), self.text("invalid", "invalid"),
                        prompts, menus)

    def text(self, key: str, default: str) -> str:
        value = self.tree.get(key, default)
        if not isinstance(value, str):
            self.fault((key,), "must be an id")
            return default
        return value

    def settings(self, raw: Any, where: tuple[Any, ...], base: dict[str, Any] | None) -> dict[str, Any]:
        out = dict(base) if base else {k: v[0] for k, v in _SETTINGS.items()}
        if not isinstance(raw, dict):
            self.fault(where, "must be a mapping of settings")
            return out
        for key, value in raw.items():
            if key not in _SETTINGS:
                continue
            _, low, high = _SETTINGS[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                self.fault((*where, key), f"must be a number from {low} to {high} (got {value!r})")
            else:
                out[key] = value
        return out

    def read_prompts(self) -> dict[str, tuple[str, Path | None]]:
        raw = self.tree.get("prompts")
        if not isinstance(raw, dict) or not raw:
            self.fault(("prompts",), "needs a mapping of prompt ids to texts")
            return {}
        prompts: dict[str, tuple[str, Path | None]] = {}
        for pid, value in raw.items():
            where = ("prompts", pid)
            if isinstance(value, str) and value.strip():
                prompts[str(pid)] = (" ".join(value.split()), None)
            elif isinstance(value, dict) and isinstance(value.get("text"), str):
                wav = value.get("wav")
                recording = (self.path.parent / wav) if isinstance(wav, str) else None
                if recording is not None and not recording.is_file():
                    self.fault((*where, "wav"), f"no such file: {recording}")
                prompts[str(pid)] = (" ".join(value["text"].split()), recording)
            else:
                self.fault(where, "must be a text, or {text: ..., wav: file}")
        return prompts

    def read_menus(self, settings: dict[str, Any]) -> dict[str, Menu]:
        raw = self.tree.get("menus")
        if not isinstance(raw, dict) or not raw:
            self.fault(("menus",), "needs a mapping of menus")
            return {}
        menus = {}
        for mid, body in raw.items():
            where = ("menus", mid)
            if not isinstance(body, dict):
                self.fault(where, "must be a mapping (greeting_long, greeting_short, options)")
                continue
            own = self.settings({k: v for k, v in body.items() if k in _SETTINGS}, where, settings)
            options = self.options(body.get("options"), (*where, "options"))
            menus[str(mid)] = Menu(str(mid), str(body.get("greeting_long", "")),
                                   str(body.get("greeting_short", body.get("greeting_long", ""))),
                                   options, float(own["timeout_s"]), float(own["inter_digit_s"]),
                                   int(own["max_failures"]), int(own["max_timeouts"]),
                                   str(body.get("invalid", "")))
        return menus

    def options(self, raw: Any, where: tuple[Any, ...]) -> dict[str, Action]:
        if not isinstance(raw, dict) or not raw:
            self.fault(where, "a menu needs options (digit: {menu|say|message: ...})")
            return {}
        out = {}
        for key, value in raw.items():
            digits = str(key)
            at = (*where, key)
            if not digits.isdigit():
                self.fault(at, f"{digits!r} is not a digit string (* repeats and # goes back "
                               "in every menu)")
                continue
            action = self.action(value, at)
            if action is not None:
                out[digits] = action
        return out

    def action(self, value: Any, at: tuple[Any, ...]) -> Action | None:
        if not isinstance(value, dict):
            self.fault(at, "must be {menu: ID}, {say: PROMPT} or {message: true}")
            return None
        fraud_type = value.get("fraud_type")
        if "menu" in value:
            return Action(Kind.MENU, str(value["menu"]))
        if "say" in value:
            return Action(Kind.SAY, str(value["say"]), str(fraud_type) if fraud_type else None)
        if value.get("message") is True:
            return Action(Kind.MESSAGE)
        self.fault(at, "must be {menu: ID}, {say: PROMPT} or {message: true}")
        return None

    def prompt_ref(self, pid: str, at: tuple[Any, ...], prompts: dict[str, Any], why: str = "") -> None:
        if pid not in prompts:
            self.fault(at, f"there is no prompt {pid!r}{why}")

    def reachability(self, entry: str, menus: dict[str, Menu]) -> None:
        seen: set[str] = set()
        todo = [entry]
        while todo:
            mid = todo.pop()
            if mid in seen or mid not in menus:
                continue
            seen.add(mid)
            todo += [a.target for a in menus[mid].options.values() if a.kind is Kind.MENU]
        for mid in menus:
            if mid not in seen:
                self.fault(("menus", mid), f"no path from the {entry!r} menu reaches this menu")

