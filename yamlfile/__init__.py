"""The one way this project reads a YAML file that operators edit: every key's line kept.

:func:`compose_mapping` gives the parsed mapping and the line of every key path
in it, or the problems that stop it (syntax, empty, not a mapping, a key given
twice). Each fault found later is a :class:`Problem` that names the file, the
line and the key path (:func:`line_of`, :func:`dotted`), so that
``check-config`` can print ``dialer.yaml:12: dialer.retry.busy_s: must be
greater than 0`` and an operator can go straight to the line. A file that cannot
be used raises :class:`FileProblems` (or a subclass) with all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["FileProblems", "Path_", "Problem", "compose_mapping", "dotted", "line_of"]

Path_ = tuple[str | int, ...]
"""A key path: mapping keys and sequence indexes from the top, e.g. ``("sip", "trunk", "uri")``."""


@dataclass(frozen=True)
class Problem:
    """One fault of a file: where it is and what is wrong, shown as ``file:line: key: message``.

    A fault that no key carries may leave ``path`` empty; ``message`` is then a whole
    sentence that names the file itself, and is shown as it is (the warning catalog's)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        if not self.path:
            return self.message
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


class FileProblems(Exception):
    """A file cannot be used; ``problems`` says where and why, one line each."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def compose_mapping(name: str, text: str, example: str
                    ) -> tuple[Any, dict[Path_, int], list[Problem]]:
    """A YAML mapping and the line of every key path in it, or the problems that stop it
    (syntax, empty, not a mapping, a key given twice). ``name`` is the file as problems
    name it; ``example`` the file to start from, named when this one is empty."""
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
        return None, {}, [Problem(name, 1, "(file)",
                                  f"the file has no settings; start from {example}")]
    if not isinstance(tree, dict):
        return None, {}, [Problem(name, 1, "(file)", "the top level must be a mapping of sections")]
    lines: dict[Path_, int] = {(): 1}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems, name)
    return tree, lines, problems


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], problems: list[Problem],
          name: str) -> None:
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
    """A key path as operators write it: ``screening.lists[0].file``; ``(top)`` for the root."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top)"


def line_of(path: Path_, lines: dict[Path_, int]) -> int:
    """The line of ``path``, or of its nearest parent that has one (else line 1)."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)
