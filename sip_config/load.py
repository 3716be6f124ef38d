"""Reading ``dialer.yaml``: YAML in, a frozen :class:`Config` or a list of problems out.

Every problem names the file, the line and the key path, so that
``check-config`` can print ``dialer.yaml:12: dialer.retry.busy_s: must be
greater than 0`` and an operator can go straight to the line.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .schema import Config

__all__ = ["DEFAULT_CONFIG", "ConfigError", "LoadedConfig", "Problem", "compose_mapping", "dotted",
           "line_of", "load_config"]

DEFAULT_CONFIG = Path("sip_config/dialer.yaml")
_SECRET_KEYS = {"password", "passwd", "secret", "token", "api_key", "apikey"}

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` says where and why."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path

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


def load_config(path: Path) -> LoadedConfig:
    """Read and validate a config file; raises :class:`ConfigError`."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([Problem(name, 0, "(file)", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(name, 0, "(file)", f"cannot be read: {exc}")]) from None
    tree, lines, problems = compose_mapping(name, text)
    if problems:
        raise ConfigError(problems)
    problems = _secrets(tree, name, lines)
    try:
        config = Config.model_validate(tree)
    except ValidationError as exc:
        problems += [_problem(err, name, lines) for err in exc.errors()]
        problems = [p for p in problems if not _shadowed(p, problems)]
        raise ConfigError(sorted(set(problems), key=lambda p: (p.line, p.path))) from None
    if problems:
        raise ConfigError(problems)
    loaded = LoadedConfig(config, path)
    problems = _semantic(loaded, name, lines)
    if problems:
        raise ConfigError(problems)
    return loaded


def compose_mapping(name: str, text: str, example: str = "sip_config/dialer.yaml"
                    ) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """A YAML mapping and the line of every key path in it, or the problems that stop it
    (syntax, empty, not a mapping, a key given twice). Used for every YAML file operators edit."""
    if not text.strip():
        return None, {}, [Problem(name, 1, "(file)", f"the file is empty; start from {example}")]
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        tree = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        return None, {}, [Problem(name, line, "(yaml)", f"YAML syntax error: {exc.problem}")]
    except yaml.YAMLError as exc:
        return None, {}, [Problem(name, 1, "(yaml)", f"YAML syntax error: {exc}")]
    if tree is None:
        return None, {}, [Problem(name, 1, "(file)", f"the file has no settings; start from {example}")]
    if not isinstance(tree, dict):
        return None, {}, [Problem(name, 1, "(file)", "the top level must be a mapping of sections")]
    lines: dict[Path_, int] = {(): 1}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems, name)
    return tree, lines, problems


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[Problem], name: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(name, line, dotted(child), "this key is given twice"))
            seen.add(key)
            lines[child] = line
            _walk(value_node, child, lines, problems, name)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, problems, name)


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def line_of(path: Path_, lines: dict[Path_, int]) -> int:
    """The line of ``path``, or of its nearest parent that has one."""
    while path not in lines:
        path = path[:-1]
    return lines[path]


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


def _semantic(loaded: LoadedConfig, name: str, lines: dict[Path_, int]) -> list[Problem]:
    """Checks across fields and against the file system."""
    config = loaded.config
    problems: list[Problem] = []

    def add(path: Path_, message: str) -> None:
        problems.append(Problem(name, line_of(path, lines), dotted(path), message))

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
    if dialer.catalog is not None and not loaded.resolve(dialer.catalog).is_file():
        add(("dialer", "catalog"), f"no such file: {loaded.resolve(dialer.catalog)}")
    else:
        from dialer.catalog import CatalogError, load_catalog  # the dialer needs sip_config too

        try:
            load_catalog(loaded.resolve(dialer.catalog) if dialer.catalog else None)
        except CatalogError as exc:
            add(("dialer", "catalog"), str(exc))
    hotline = config.hotline
    from hotline.menus import MenuError, load_menus  # the hotline needs sip_config too

    try:
        load_menus(loaded.resolve(hotline.menus) if hotline.menus else None)
    except MenuError as exc:
        problems.extend(exc.problems)  # each names the menus file, its line and key
    if config.sms is not None:
        from hotline.menus import DEFAULT_MENUS
        from texts.words import TextBookError, load_text_book

        try:
            load_text_book(loaded.resolve(hotline.menus) if hotline.menus else DEFAULT_MENUS,
                           DEFAULT_MENUS)
        except TextBookError as exc:
            problems.extend(exc.problems)
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
    return problems
