"""The helpers that write a flow's state table: one state's rows, and parts joined once."""

from __future__ import annotations

import enum

import pytest

from callflow import StateTable, rows_in, unique_rows


class S(enum.Enum):
    A = "a"
    B = "b"


class T(enum.Enum):
    GO = enum.auto()
    STOP = enum.auto()


def go(flow: object, event: object, now: float) -> S:
    return S.B


def test_rows_in_one_state_become_rows_of_the_table() -> None:
    rows = rows_in(S.A, {T.GO: (go, [S.B]), T.STOP: (go, ())})
    assert rows == {(S.A, T.GO): (go, [S.B]), (S.A, T.STOP): (go, ())}
    table = StateTable("t", unique_rows(rows, rows_in(S.B, {T.STOP: (go, ())})))
    assert table.row(S.A, T.GO).targets == frozenset({S.B})
    assert table.row(S.B, T.STOP).targets == frozenset({S.B})  # no targets: stay


def test_a_row_written_twice_is_a_mistake() -> None:
    with pytest.raises(ValueError, match=r"rows written twice: \[\('A', 'GO'\)\]"):
        unique_rows(rows_in(S.A, {T.GO: (go, [S.B])}), {(S.A, T.GO): (go, ())})
