"""The center's library of its carrier's spoken announcements, and the clips the dialer heard.

A directory under ``engine.data_dir`` (``announcements/``): each announcement is an 8 kHz
mono 16-bit WAV (converted by sox from whatever the operator had) and a JSON file beside it
saying its class (busy, off, unreachable, invalid, suspended), the carrier and where it came
from. ``heard/`` holds the clips of speech-like early media that matched nothing on a call
that then failed, each with its final status, until ``dialer.progress.keep_heard_days``.

Every file is written under a temporary name and renamed, so a reader (the softphone worker
loading the library, a command listing it) never sees half a file; the directory's change
time tells a worker to load the library again. Files are the owner's only.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .announce import LABELS, matchable_seconds

__all__ = ["MIN_MATCHABLE_S", "Announcement", "HeardClip", "Library", "LibraryError",
           "keep_heard", "read_pcm"]

RATE = 8000
MIN_MATCHABLE_S = 1.0
DIRECTORY = "announcements"  # under engine.data_dir
HEARD = "heard"


class LibraryError(Exception):
    """The library cannot do what was asked; ``str()`` is one sentence."""


@dataclass(frozen=True)
class Announcement:
    id: str
    label: str  # the class: busy, off, unreachable, invalid, suspended
    carrier: str
    added_at: float
    seconds: float
    matchable_s: float
    source: str  # the file it was made from, or "heard:<clip id>"


@dataclass(frozen=True)
class HeardClip:
    id: str
    at: float
    status: int
    seconds: float
    voiced_s: float
    call: str  # <task>-<attempt>: which warning call heard it


class Library:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def of(cls, data_dir: Path) -> Library:
        """The library of a data directory (``<engine.data_dir>/announcements``)."""
        return cls(data_dir / DIRECTORY)

    @property
    def heard_dir(self) -> Path:
        return self.directory / HEARD

    # ------------------------------------------------------------ announcements

    def add(self, source: Path, label: str, carrier: str, now: float) -> Announcement:
        """Convert ``source`` (any format sox reads) and add it as an announcement of class
        ``label``; nothing is added when it cannot be read or is too short to match."""
        _check_label(label)
        if not source.is_file():
            raise LibraryError(f"{source} is not a file")
        pcm = _convert(source)
        return self._add(pcm, label, carrier, str(source), now)

    def add_heard(self, clip_id: str, label: str, carrier: str, now: float) -> Announcement:
        """A clip the dialer heard becomes an announcement of class ``label``."""
        _check_label(label)
        wav = self.heard_dir / f"{clip_id}.wav"
        if not _safe_id(clip_id) or not wav.is_file():
            raise LibraryError(f"there is no heard clip {clip_id} (see: announcements heard)")
        return self._add(read_pcm(wav), label, carrier, f"heard:{clip_id}", now)

    def _add(self, pcm: np.ndarray, label: str, carrier: str, source: str,
             now: float) -> Announcement:
        usable = matchable_seconds(pcm)
        if usable < MIN_MATCHABLE_S:
            raise LibraryError(f"the recording has {usable:.1f} s of sound the matcher can use; "
                               f"at least {MIN_MATCHABLE_S:g} s is needed")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        entry = Announcement(_new_id("a", self.directory), label, carrier, now,
                             round(len(pcm) / RATE, 2), round(usable, 2), source)
        _write_wav(self.directory / f"{entry.id}.wav", pcm)
        _write_json(self.directory / f"{entry.id}.json", asdict(entry))
        return entry

    def remove(self, announcement_id: str) -> Announcement:
        entry = self.get(announcement_id)
        (self.directory / f"{entry.id}.json").unlink()  # the JSON first: no half entry is listed
        with contextlib.suppress(FileNotFoundError):
            (self.directory / f"{entry.id}.wav").unlink()
        return entry

    def get(self, announcement_id: str) -> Announcement:
        path = self.directory / f"{announcement_id}.json"
        if not _safe_id(announcement_id) or not path.is_file():
            raise LibraryError(f"there is no announcement {announcement_id} "
                               f"(see: announcements list)")
        return Announcement(**json.loads(path.read_text(encoding="utf-8")))

    def entries(self) -> list[Announcement]:
        found = [Announcement(**meta) for meta in _metas(self.directory)
                 if (self.directory / f"{meta['id']}.wav").is_file()]
        return sorted(found, key=lambda a: (a.added_at, a.id))

    def references(self) -> Iterator[tuple[Announcement, np.ndarray]]:
        """Each announcement with its audio (what a worker's matcher is built from)."""
        for entry in self.entries():
            try:
                yield entry, read_pcm(self.directory / f"{entry.id}.wav")
            except LibraryError:
                continue  # removed while we read

    def version(self) -> int:
        """Changes whenever an announcement is added or removed (the directory's mtime)."""
        try:
            return self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    # ------------------------------------------------------------ heard clips

    def heard(self) -> list[HeardClip]:
        found = [HeardClip(**meta) for meta in _metas(self.heard_dir)
                 if (self.heard_dir / f"{meta['id']}.wav").is_file()]
        return sorted(found, key=lambda c: (c.at, c.id))

    def prune_heard(self, now: float, keep_s: float) -> int:
        """Remove the clips older than ``keep_s``; how many went."""
        gone = 0
        for clip in self.heard():
            if now - clip.at >= keep_s:
                for suffix in (".json", ".wav"):
                    with contextlib.suppress(FileNotFoundError):
                        (self.heard_dir / f"{clip.id}{suffix}").unlink()
                gone += 1
        return gone


def keep_heard(directory: Path, pcm: np.ndarray, status: int, voiced_s: float, call: str,
               now: float) -> HeardClip:
    """Write a clip of early media into ``directory`` (the library's ``heard``)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    clip = HeardClip(_new_id("h", directory), now, status, round(len(pcm) / RATE, 2),
                     round(voiced_s, 2), call)
    _write_wav(directory / f"{clip.id}.wav", pcm)
    _write_json(directory / f"{clip.id}.json", asdict(clip))
    return clip


def read_pcm(path: Path) -> np.ndarray:
    """The samples of an 8 kHz mono 16-bit WAV this library wrote."""
    try:
        with wave.open(str(path), "rb") as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                raise LibraryError(f"{path.name} is not 8 kHz mono 16-bit")
            return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").copy()
    except (OSError, EOFError, wave.Error) as exc:
        raise LibraryError(f"{path.name} cannot be read: {exc}") from None


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise LibraryError(f"{label!r} is not a class of announcement: write one of "
                           f"{', '.join(LABELS)}")


def _convert(source: Path) -> np.ndarray:
    try:
        done = subprocess.run(["sox", str(source), "-t", "raw", "-r", str(RATE), "-c", "1",
                               "-b", "16", "-e", "signed-integer", "-L", "-"],
                              capture_output=True, timeout=60, check=False)
    except FileNotFoundError:
        raise LibraryError("sox is not installed (apt install sox libsox-fmt-mp3)") from None
    except subprocess.TimeoutExpired:
        raise LibraryError(f"sox took more than 60 s to read {source.name}") from None
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = why[-1].split(":", 1)[-1].strip() if why else f"exit {done.returncode}"
        raise LibraryError(f"sox cannot read {source.name}: {detail}")
    return np.frombuffer(done.stdout, dtype="<i2").copy()


def _metas(directory: Path) -> Iterator[dict[str, Any]]:
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(".json") or name.startswith("."):
            continue
        try:
            yield json.loads((directory / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # removed while we read, or not ours


def _new_id(prefix: str, directory: Path) -> str:
    while True:
        candidate = prefix + secrets.token_hex(3)
        if not (directory / f"{candidate}.json").exists():
            return candidate


def _safe_id(value: str) -> bool:
    return value.isascii() and value.isalnum() and len(value) <= 32


def _write_wav(path: Path, pcm: np.ndarray) -> None:
    with _atomic(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def _write_json(path: Path, data: dict[str, object]) -> None:
    with _atomic(path) as tmp:
        tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    fd, name = tempfile.mkstemp(prefix=".", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
