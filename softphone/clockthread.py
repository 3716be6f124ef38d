"""Python's thread state for the media clock thread, kept for as long as that thread lives.

pjmedia's clock thread is not a Python thread. Each callback SWIG makes from it into
Python (the speech port's frames, a prompt's end) calls ``PyGILState_Ensure``, which finds
no thread state for the thread, makes one, and ``PyGILState_Release`` frees it again on the
way out. CPython 3.11 gives every new thread state its own frame stack, mapped and unmapped
with ``mmap``/``munmap``; the unmapping flushes the TLB of every CPU the process runs on,
which in a virtual machine is an interrupt to each. Measured in a worker with 4 calls: a
tenth of the media clock thread's time went to making and freeing thread states.

:func:`keep` (called first thing in such a callback) takes one more hold of the thread's
state, so that the release at the end of the callback leaves it in place. The clock thread
ends when the worker stops its clock (:class:`softphone.endpoint.MediaClock`), which waits
for it; :func:`let_go` then frees the states of the threads that are gone, on the main
thread.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

__all__ = ["keep", "kept", "let_go"]

_api = ctypes.PyDLL(None)  # the running interpreter's own C API, with the GIL held
_ensure = _api.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []
_current = _api.PyThreadState_Get
_current.restype = ctypes.c_void_p
_current.argtypes = []
_clear = _api.PyThreadState_Clear
_clear.restype = None
_clear.argtypes = [ctypes.c_void_p]
_delete = _api.PyThreadState_Delete
_delete.restype = None
_delete.argtypes = [ctypes.c_void_p]

_kept: dict[int, tuple[int, int]] = {}  # thread ident -> (its kernel id, its PyThreadState*)
_last = 0  # the ident kept last: the common case is one check
_MAIN = threading.main_thread().ident  # owns its state: pjsua may call back on it too


def keep() -> None:
    """In the speech port's frame callback, on the media clock thread: keep this thread's
    Python state beyond the callback. Cheap after the first call on a thread. Only for the
    clock thread: pjsua calls some callbacks on threads of its own that live as long as the
    library (its event thread), and :func:`let_go` frees only states of threads that ended."""
    global _last
    ident = threading.get_ident()
    if ident == _last or ident == _MAIN or ident in _kept:
        return
    _ensure()  # the GIL is held here: this only counts one more hold of the state
    _kept[ident] = (threading.get_native_id(), _current())
    _last = ident


def kept() -> int:
    """How many thread states are kept (for tests)."""
    return len(_kept)


def let_go() -> None:
    """On the main thread, once the media clock has stopped (pjmedia joins its thread): free
    the kept states of the threads that have ended. A thread still running (its kernel id is
    still among the process's tasks) keeps its state: freeing it would pull the state from
    under its next callback."""
    global _last
    for ident, (native, state) in list(_kept.items()):
        if Path(f"/proc/self/task/{native}").exists():
            continue
        _clear(state)
        _delete(state)
        del _kept[ident]
    _last = 0
