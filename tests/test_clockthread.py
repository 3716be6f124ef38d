"""The media clock thread's Python state is kept while the thread lives, and freed after.

The clock thread is pjmedia's, not Python's: here a thread made with ``pthread_create``
runs a ctypes callback, which takes and gives back the GIL exactly as SWIG's directors do
(``PyGILState_Ensure`` / ``PyGILState_Release``): without a hold of its own, the thread's
Python state is made for the callback and freed when it returns.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from softphone import clockthread

ROOT = Path(__file__).resolve().parent.parent
libc = ctypes.CDLL(None)
START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
api = ctypes.PyDLL(None)
api.PyInterpreterState_Get.restype = ctypes.c_void_p
api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
api.PyThreadState_Next.restype = ctypes.c_void_p
api.PyThreadState_Next.argtypes = [ctypes.c_void_p]


def states() -> int:
    """The interpreter's thread states, counted."""
    count, state = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while state:
        count, state = count + 1, api.PyThreadState_Next(state)
    return count


def foreign_thread(body: Callable[[], None]) -> Callable[[], None]:
    """Start a native thread that runs ``body`` as one callback; returns its join."""

    @START
    def start(_: object) -> None:
        body()

    handle = ctypes.c_ulong()
    assert libc.pthread_create(ctypes.byref(handle), None, start, None) == 0

    def join() -> None:
        assert libc.pthread_join(handle, None) == 0
        assert start  # the callback outlives the thread that runs it

    return join


@pytest.fixture(autouse=True)
def nothing_kept() -> None:
    clockthread.let_go()


def test_without_a_hold_the_state_goes_with_the_callback() -> None:
    before = states()
    foreign_thread(lambda: None)()
    assert states() == before and clockthread.kept() == 0


def test_a_kept_state_outlives_the_callback_and_is_freed_once_its_thread_ended() -> None:
    before = states()
    foreign_thread(clockthread.keep)()
    assert clockthread.kept() == 1 and states() == before + 1  # the thread ended, its state kept
    clockthread.let_go()
    assert clockthread.kept() == 0 and states() == before


def test_the_state_of_a_thread_still_running_is_not_freed() -> None:
    before = states()
    kept, go_on = threading.Event(), threading.Event()

    def body() -> None:
        clockthread.keep()
        kept.set()
        go_on.wait(10)  # the GIL let go: the main thread runs meanwhile

    join = foreign_thread(body)
    assert kept.wait(10)
    clockthread.let_go()  # a clock thread still running (pjsua's event thread, say)
    assert clockthread.kept() == 1
    go_on.set()
    join()
    clockthread.let_go()
    assert clockthread.kept() == 0 and states() == before


def test_every_clock_thread_gets_its_own_state_and_all_are_freed() -> None:
    before = states()
    for round_ in range(20):  # a clock started and stopped with each call
        foreign_thread(clockthread.keep)()
        assert clockthread.kept() == 1, round_
        clockthread.let_go()
    assert clockthread.kept() == 0 and states() == before


def test_the_main_thread_is_never_kept() -> None:
    # pjsua may call back on the main thread, whose state is Python's own: never freed.
    # In a process of its own, where this is surely the main thread.
    script = ("from softphone import clockthread\n"
              "clockthread.keep()\n"
              "assert clockthread.kept() == 0\n"
              "clockthread.let_go()\n"
              "print('alive')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30, cwd=ROOT, check=False)
    assert result.returncode == 0 and result.stdout == "alive\n", result.stderr
