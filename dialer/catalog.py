"""The warning catalog: fraud types, what a warning call says for each, and the words around it.

Read once from YAML (the shipped ``dialer/warnings.yaml`` unless
``dialer.catalog`` names another). The ids of :data:`REQUIRED_TYPES` are the
contract's: a catalog may add types, never drop these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from audio import Prompt
from yamlfile import FileProblems, Problem

__all__ = ["DEFAULT_CATALOG", "REQUIRED_TYPES", "Catalog", "CatalogError", "FraudType", "load_catalog"]

DEFAULT_CATALOG = Path(__file__).resolve().parent / "warnings.yaml"
REQUIRED_TYPES = (
    "police_impersonation", "customer_service_refund", "order_brushing", "investment", "loan",
    "romance", "boss_or_acquaintance", "credit_record", "game_trading", "general",
)
MESSAGES = ("intro", "keys", "thanks", "goodbye", "machine", "connecting", "officer_unreachable")
FALLBACK = "general"
DEFAULT_TEXT = ("【{center}】{asks}这是诈骗，请不要转账。我们正在用{caller_id}给您打电话，请接听。"
                "如果已经转了账，请马上拨打110报警。")
TEXT_WORDS = {"center": "", "asks": "", "caller_id": ""}


class CatalogError(FileProblems, ValueError):
    """The catalog cannot be used: one problem, a sentence that names the file (and the line
    of a YAML syntax error)."""

    def __init__(self, path: Path, sentence: str, line: int = 0) -> None:
        super().__init__([Problem(str(path), line, "", sentence)])


@dataclass(frozen=True)
class FraudType:
    id: str
    name: str
    warning: str
    recording: Path | None = None
    text: str = ""
    """One sentence for a warning text: what this scam's callers ask for."""


@dataclass(frozen=True)
class Catalog:
    path: Path
    types: dict[str, FraudType]
    messages: dict[str, str]

    def warning_text(self, type_id: str | None, *, center: str, caller_id: str) -> str:
        """The warning text (SMS) for a fraud type: the center, what the scammers ask for,
        the number the warning calls come from, and 110."""
        kind = self.get(type_id)
        asks = kind.text or self.types[FALLBACK].text
        return self.messages.get("text", DEFAULT_TEXT).format(
            center=center, asks=asks, caller_id=caller_id)

    def known(self) -> list[str]:
        return sorted(self.types)

    def get(self, type_id: str | None) -> FraudType:
        return self.types.get(type_id or FALLBACK) or self.types[FALLBACK]

    def prompts(self, *, center: str, ack: str, officer: str, callback: str) -> list[Prompt]:
        """Every prompt a warning call may play: ``warn-<type>`` and ``warn-<message>``."""
        words = {"center": center, "ack": ack, "officer": officer, "callback": _spell(callback)}
        said = {k: self.messages[k].format(**words) for k in MESSAGES}
        out = [Prompt(prompt_name(t.id), f"{said['intro']}{t.warning}{said['keys']}", t.recording,
                      before=said["intro"] if t.recording else "",
                      after=said["keys"] if t.recording else "")
               for t in self.types.values()]
        out += [Prompt(prompt_name(k), v) for k, v in said.items() if k not in ("intro", "keys")]
        return out


def prompt_name(key: str) -> str:
    return f"warn-{key.replace('_', '-')}"


_SPOKEN_DIGITS = dict(zip("0123456789", "零幺二三四五六七八九", strict=True))


def _spell(number: str) -> str:
    """Digits said one by one, the way numbers are read out on the phone ("96110" → "九六幺幺零")."""
    return "".join(_SPOKEN_DIGITS.get(d, d) for d in number)


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or DEFAULT_CATALOG
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(path, f"the warning catalog {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(path, f"the warning catalog {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 0
        where = f":{line}" if mark else ""
        raise CatalogError(path, f"{path}{where}: the warning catalog is not valid YAML",
                           line) from None
    if not isinstance(tree, dict) or not isinstance(tree.get("types"), dict):
        raise CatalogError(path, f"{path}: the warning catalog needs a 'types:' mapping of "
                                 "fraud types")
    types: dict[str, FraudType] = {}
    for type_id, entry in tree["types"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("warning"), str) \
                or not entry["warning"].strip():
            raise CatalogError(path, f"{path}: fraud type {type_id!r} needs a 'warning:' text")
        recording = entry.get("wav")
        types[str(type_id)] = FraudType(
            str(type_id), str(entry.get("name") or type_id), " ".join(entry["warning"].split()),
            (path.parent / recording) if isinstance(recording, str) else None,
            " ".join(entry["text"].split()) if isinstance(entry.get("text"), str) else "")
    missing = [t for t in REQUIRED_TYPES if t not in types]
    if missing:
        raise CatalogError(path, f"{path}: the warning catalog lacks the fraud type(s) "
                                 f"{', '.join(missing)}, which requests may name")
    messages = tree.get("messages") or {}
    lacking = [m for m in MESSAGES if not isinstance(messages.get(m), str)]
    if lacking:
        raise CatalogError(path, f"{path}: the warning catalog lacks the message(s) "
                                 f"{', '.join(lacking)}")
    for key in MESSAGES:
        try:
            messages[key].format(center="", ack="", officer="", callback="")
        except (KeyError, IndexError, ValueError) as exc:
            raise CatalogError(path, f"{path}: message {key!r} has a placeholder that is not "
                                     f"{{center}}, {{ack}}, {{officer}} or {{callback}} ({exc})"
                               ) from None
    said = {k: " ".join(messages[k].split()) for k in MESSAGES}
    if isinstance(messages.get("text"), str):
        try:
            messages["text"].format(**TEXT_WORDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise CatalogError(path, f"{path}: message 'text' has a placeholder that is not "
                                     f"{{center}}, {{asks}} or {{caller_id}} ({exc})") from None
        said["text"] = " ".join(messages["text"].split())
    return Catalog(path, types, said)
