"""The list store: snapshot + journal, shared between processes, surviving restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from screening import NumberStore

A, B, C = 8613800137490, 8613800137491, 8613800137492


def keys(*values: int) -> np.ndarray:
    return np.array(sorted(values), np.uint64)


def test_empty_store(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    assert A not in store and len(store) == 0


def test_add_remove_take_effect_at_once_and_survive_restart(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    assert store.add([A, B]) == 2
    assert A in store and B in store
    assert store.remove([A]) == 1
    assert A not in store
    assert store.add([B]) == 0  # already there
    reopened = NumberStore(tmp_path / "l")
    assert A not in reopened and B in reopened and len(reopened) == 1


def test_merge_keeps_live_edits_and_builds_a_generation(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    store.merge(keys(A, B))
    store.remove([A])
    store.add([C])
    generation = store.generation
    assert store.merge(keys(B)) == 0
    assert store.generation == generation + 1
    assert (A in store, B in store, C in store) == (False, True, True)
    assert not list((tmp_path / "l").glob(f"*-{generation}.*"))  # old generation removed


def test_replace(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    store.merge(keys(A, B))
    store.add([C])
    store.replace(keys(A))
    assert (A in store, B in store, C in store) == (True, False, False)


def test_other_instance_sees_edits_on_refresh(tmp_path: Path) -> None:
    writer = NumberStore(tmp_path / "l")
    writer.merge(keys(A))
    reader = NumberStore(tmp_path / "l")
    writer.add([B])
    writer.remove([A])
    assert B not in reader  # not yet refreshed
    reader.refresh()
    assert B in reader and A not in reader
    writer.merge(keys(C))  # a new generation
    reader.refresh()
    assert C in reader and B in reader


def test_edits_from_another_process(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    store.merge(keys(A))
    code = (f"from screening import NumberStore; s = NumberStore({str(tmp_path / 'l')!r}); "
            f"s.add([{B}]); s.remove([{A}])")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    store.refresh()
    assert B in store and A not in store


def test_torn_journal_line_is_ignored_and_not_glued(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    store.add([A])
    journal = next((tmp_path / "l").glob("journal-*.log"))
    with journal.open("ab") as out:
        out.write(b"+86138001")  # a crash in the middle of a write
    reopened = NumberStore(tmp_path / "l")
    assert A in reopened and len(reopened) == 1
    reopened.add([B])
    again = NumberStore(tmp_path / "l")
    assert A in again and B in again and len(again) == 2


def test_snapshot_is_memory_mapped(tmp_path: Path) -> None:
    store = NumberStore(tmp_path / "l")
    store.merge(np.arange(1000, 2000, dtype=np.uint64) * 3)
    reopened = NumberStore(tmp_path / "l")
    assert isinstance(reopened._snapshot, np.memmap)
    assert 3000 in reopened and 3001 not in reopened
    assert reopened.disk_bytes() < 1000 * 8 + 1024


def test_a_corrupt_generation_keeps_the_last_good_copy_until_mended(tmp_path: Path) -> None:
    import pytest

    from screening import StoreError

    writer = NumberStore(tmp_path)
    writer.merge(np.array([8613800137490, 8613900001111], np.uint64))
    reader = NumberStore(tmp_path)
    good = (tmp_path / "meta.json").read_text()
    (tmp_path / "meta.json").write_text("{ not json")
    with pytest.raises(StoreError, match="cannot read the list"):
        reader.refresh()
    assert 8613800137490 in reader and len(reader) == 2  # still served
    assert reader.error is not None
    with pytest.raises(StoreError):
        reader.refresh()  # and it keeps trying
    (tmp_path / "meta.json").write_text(good)
    reader.refresh()
    assert reader.error is None and 8613900001111 in reader


def test_a_vanished_meta_file_is_not_an_empty_list(tmp_path: Path) -> None:
    import pytest

    from screening import StoreError

    NumberStore(tmp_path).merge(np.array([8613800137490], np.uint64))
    reader = NumberStore(tmp_path)
    (tmp_path / "meta.json").unlink()
    with pytest.raises(StoreError, match="meta.json has gone"):
        reader.refresh()
    assert 8613800137490 in reader


def test_lenient_open_of_a_corrupt_list_starts_empty_and_says_why(tmp_path: Path) -> None:
    import pytest

    from screening import StoreError

    (tmp_path / "meta.json").write_text('{"generation": "x"}')
    with pytest.raises(StoreError):
        NumberStore(tmp_path)
    store = NumberStore(tmp_path, lenient=True)
    assert len(store) == 0 and "no generation number" in (store.error or "")
