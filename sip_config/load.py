"""Reading ``dialer.yaml``: YAML in, a frozen :class:`Config` or a list of problems out.

Every problem names the file, the line and the key path (:mod:`yamlfile`), so
that ``check-config`` can print ``dialer.yaml:12: dialer.retry.busy_s: must be
greater than 0`` and an operator can go straight to the line. Only this file is
checked here; the files it names (the warning catalog, the voice menus, the
text book) are read and checked with it by :func:`settings.load_settings`.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from yamlfile import FileProblems, Path_, Problem, compose_mapping, dotted, line_of

from .schema import Config

__all__ = ["DEFAULT_CONFIG", "ConfigError", "LoadedConfig", "Problem", "load_config", "read_config"]

DEFAULT_CONFIG = Path("sip_config/dialer.yaml")
_SECRET_KEYS = {"password", "passwd", "secret", "token", "api_key", "apikey"}


class ConfigError(FileProblems):
    """The configuration cannot be used; ``problems`` says where and why."""


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path
    lines: dict[Path_, int] = field(default_factory=dict, compare=False, repr=False)
    """The line of every key path in the file, for problems found after it was read."""

    @property
    def base(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        """A path from the config, relative to the config file's directory."""
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base / path

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.config.engine.data_dir)

    @property
    def media_dir(self) -> Path:
        """Where recordings and callback messages go: engine.media_dir, else data_dir."""
        media = self.config.engine.media_dir
        return self.resolve(media) if media else self.data_dir

    def problem(self, where: Path_, message: str) -> Problem:
        """A problem at the key path ``where`` of this file."""
        return Problem(str(self.path), line_of(where, self.lines), dotted(where), message)


def load_config(path: Path) -> LoadedConfig:
    """Read and validate a config file alone; raises :class:`ConfigError`."""
    loaded, problems = read_config(path)
    if loaded is None or problems:
        raise ConfigError(problems)
    return loaded


def read_config(path: Path) -> tuple[LoadedConfig | None, list[Problem]]:
    """A config file and its problems: (None, problems) when no config can be built from it,
    else the config and the problems of the checks across its fields (often none)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [Problem(name, 0, "(file)", "no such file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, 0, "(file)", f"cannot be read: {exc}")]
    tree, lines, problems = compose_mapping(name, text, example=str(DEFAULT_CONFIG))
    if problems:
        return None, problems
    problems = _secrets(tree, name, lines)
    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        problems += [_problem(err, name, lines) for err in exc.errors()]
        problems = [p for p in problems if not _shadowed(p, problems)]
        return None, sorted(set(problems), key=lambda p: (p.line, p.path))
    if problems:
        return None, problems
    loaded = LoadedConfig(config, path, lines)
    return loaded, _semantic(loaded)


def _secrets(tree: Any, name: str, lines: dict[Path_, int], path: Path_ = ()) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            child = (*path, key)
            if isinstance(key, str) and key.lower() in _SECRET_KEYS:
                problems.append(Problem(name, line_of(child, lines), dotted(child),
                                        "a secret is written in clear; put it in an environment "
                                        "variable and name that variable with password_env"))
            else:
                problems += _secrets(value, name, lines, child)
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            problems += _secrets(item, name, lines, (*path, index))
    return problems


def _shadowed(problem: Problem, problems: list[Problem]) -> bool:
    """The 'unknown key' error of a clear-text password says less than the secret error."""
    return problem.message.startswith("unknown key") and any(
        p.path == problem.path and p.message.startswith("a secret") for p in problems
    )


def _problem(err: Any, name: str, lines: dict[Path_, int]) -> Problem:
    loc: Path_ = tuple(part for part in err["loc"] if not (isinstance(part, str) and "[" in part))
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        known = _known_keys(loc[:-1])
        guess = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f" (did you mean {guess[0]!r}?)" if guess else f" (known keys: {', '.join(known)})"
        message = f"unknown key {key!r}{hint}"
    elif kind == "missing":
        message = "is required"
    else:
        message = _plain(err)
    return Problem(name, line_of(loc, lines), dotted(loc), message)


def _plain(err: Any) -> str:
    message = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message[0].lower() + message[1:] if message else message
    given = err.get("input")
    if err["type"] not in ("value_error",) and not isinstance(given, (dict, list)):
        message += f" (got {given!r})"
    return message


def _known_keys(loc: Path_) -> list[str]:
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return []
        model = _model_of(fields[part].annotation)
    return list(getattr(model, "model_fields", {}))


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, tuple, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def _semantic(loaded: LoadedConfig) -> list[Problem]:
    """Checks across fields and against the file system (the files the config names are
    read by :mod:`settings`)."""
    config = loaded.config
    problems: list[Problem] = []

    def add(path: Path_, message: str) -> None:
        problems.append(loaded.problem(path, message))

    seen: dict[str, int] = {}
    for index, lst in enumerate(config.screening.lists):
        if lst.name in seen:
            add(("screening", "lists", index, "name"),
                f"list name {lst.name!r} is already used by screening.lists[{seen[lst.name]}]")
        seen.setdefault(lst.name, index)
        if lst.file is not None and not loaded.resolve(lst.file).is_file():
            add(("screening", "lists", index, "file"), f"no such file: {loaded.resolve(lst.file)}")
        if lst.status is not None and lst.action != "reject":
            add(("screening", "lists", index, "status"), "a status is only used with action: reject")
    prefixes: dict[str, int] = {}
    for index, rule in enumerate(config.screening.prefixes):
        if rule.prefix in prefixes:
            add(("screening", "prefixes", index, "prefix"),
                f"prefix {rule.prefix!r} is already given in screening.prefixes[{prefixes[rule.prefix]}]")
        prefixes.setdefault(rule.prefix, index)
    dialer = config.dialer
    if dialer.escalate_after_attempts > dialer.max_attempts:
        add(("dialer", "escalate_after_attempts"),
            f"is {dialer.escalate_after_attempts}, more than dialer.max_attempts "
            f"({dialer.max_attempts}): the task would fail before it escalates")
    if dialer.ack_digit == dialer.officer_digit:
        add(("dialer", "ack_digit"),
            f"{dialer.ack_digit} is also dialer.officer_digit (it reaches the duty officer); "
            "choose another digit")
    trunk = config.sip.trunk
    if trunk.registrar and not (trunk.username and trunk.password_env):
        add(("sip", "trunk", "registrar"), "registration needs sip.trunk.username and sip.trunk.password_env")
    for index, network in enumerate(config.sip.allowed_sources):
        try:
            ip_network(network, strict=False)
        except ValueError:
            add(("sip", "allowed_sources", index), f"{network!r} is not an address or network (CIDR)")
    mqtt = config.mqtt
    if mqtt is not None:
        if mqtt.password_env and not mqtt.username:
            add(("mqtt", "password_env"), "a broker password needs mqtt.username too")
        if mqtt.ca_file is not None:
            if not mqtt.url.startswith("mqtts://"):
                add(("mqtt", "ca_file"), "a CA file is only used with an mqtts:// url")
            elif not loaded.resolve(mqtt.ca_file).is_file():
                add(("mqtt", "ca_file"), f"no such file: {loaded.resolve(mqtt.ca_file)}")
    console = config.console
    if console is not None:
        if (console.tls_cert is None) != (console.tls_key is None):
            add(("console", "tls_cert" if console.tls_cert is None else "tls_key"),
                "HTTPS needs both console.tls_cert and console.tls_key")
        for key in ("tls_cert", "tls_key"):
            name = getattr(console, key)
            if name is not None and not loaded.resolve(name).is_file():
                add(("console", key), f"no such file: {loaded.resolve(name)}")
    return problems
