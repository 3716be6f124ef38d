"""Voice prompts: each has a text (or a recording); ``build`` makes the missing 8 kHz WAV files.

espeak-ng's Mandarin voice (``cmn``) speaks, sox converts to what the softphone
plays best (8 kHz, mono, 16-bit): no resampling on the call path. A prompt
with a ``recording`` is converted from that file instead. Beside each WAV a
``.txt`` keeps what it was made from, so a changed text is spoken again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PINNED", "PROMPTS", "Prompt", "PromptError", "build", "path_of", "pin", "unpin"]


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str
    recording: Path | None = None
    """A recorded WAV to use instead of speaking ``text``."""
    tone_s: float = 0.0
    """A beep of this length (1 kHz) instead of speech."""
    before: str = ""
    after: str = ""
    """Spoken around a recording (who is calling first, which digit does what last), so
    that a recorded warning still says them."""

    @property
    def source(self) -> str:
        """What the WAV is made from; a recording by its path, size and time, so that a file
        recorded again under the same name is converted again."""
        if self.tone_s:
            return f"tone:1000Hz:{self.tone_s:g}s"
        if self.recording is None:
            return self.text
        try:
            stat = self.recording.stat()
            made = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            made = "missing"
        around = f"|{self.before}|{self.after}" if self.before or self.after else ""
        return f"recording:{self.recording}:{made}{around}"


PROMPTS: dict[str, Prompt] = {p.name: p for p in (
    Prompt("warning",
           "请注意，这个来电号码被反诈系统标记为可疑。"
           "凡是让您转账汇款、提供验证码、下载陌生软件的，都是诈骗，请不要转账。"),
    Prompt("connecting", "正在为您转接反诈中心值班民警，请稍候。"),
    Prompt("queue-0", "您好，值班民警都在通话中，请不要挂机，马上为您接通。"),
    *(Prompt(f"queue-{n}", f"您好，值班民警都在通话中，请不要挂机。您前面还有{word}位。")
      for n, word in enumerate("一两三四五六七八九", start=1)),
    Prompt("queue-many", "您好，值班民警都在通话中，请不要挂机。您前面还有十位以上。"),
    Prompt("operators-busy", "民警暂时不能接听，请听自动语音，也可以留言。"),
)}

SAMPLE_RATE = 8000


class PromptError(Exception):
    """A prompt cannot be made (a tool is missing or failed)."""


def path_of(directory: Path, name: str) -> Path:
    return directory / f"{name}.wav"


PINNED = "pinned"
"""Where :func:`pin` keeps the prompts that calls began with, under the prompt directory."""


def pin(path: Path) -> Path:
    """The prompt at ``path`` as it is now, under a path no rebuild touches.

    A hard link in a directory named after the file's inode and time: a live reload renames a new WAV over
    ``path``, the link keeps the old audio, so a call that plays its warning again (the
    repeats) hears what it began with. ``path`` itself when it cannot be linked."""
    try:
        stat = path.stat()
        pinned = path.parent / PINNED / f"{stat.st_ino}.{stat.st_mtime_ns}" / path.name
        if not pinned.exists():
            pinned.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.link(path, pinned)
    except OSError:
        return path
    return pinned


def unpin(directory: Path, keep: Iterable[str]) -> int:
    """Remove the pinned prompts of ``directory`` that no name in ``keep`` uses; the count."""
    kept = set(keep)
    removed = 0
    for pinned in (directory / PINNED).glob("*/*.wav"):
        if str(pinned) not in kept:
            with contextlib.suppress(OSError):
                pinned.unlink()
                removed += 1
            with contextlib.suppress(OSError):
                pinned.parent.rmdir()  # once it is empty
    return removed


def cache_dir() -> Path:
    """Prompts already spoken, by a hash of what they were made from (shared by data dirs)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "antifraud-dialer" / "prompts"


def build(directory: Path, prompts: Iterable[Prompt] | None = None, voice: str = "cmn",
          force: bool = False, rate: int = 150,
          progress: Callable[[int, int], None] | None = None) -> list[Path]:
    """Make every missing or outdated prompt WAV in ``directory``; returns the files written.

    A spoken prompt already in :func:`cache_dir` is copied from there.
    ``progress(done, total)`` is called after each prompt made."""
    todo = list(PROMPTS.values() if prompts is None else prompts)
    directory.mkdir(parents=True, exist_ok=True)
    stale = stale_prompts(directory, todo, force)
    if not stale:
        return []
    written = []
    for prompt in stale:
        target = path_of(directory, prompt.name)
        # made beside it, then renamed over it: a call playing the old one (a live reload)
        # finishes with the old audio, and a crash never leaves half a prompt
        partial = target.with_name(f"{target.stem}.{os.getpid()}.part.wav")
        try:
            if prompt.tone_s:
                _run(["sox", "-n", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(partial),
                      "synth", f"{prompt.tone_s:g}", "sine", "1000", "vol", "0.4"])
            elif prompt.recording is not None:
                if not prompt.recording.is_file():
                    raise PromptError(f"the recording {prompt.recording} of prompt "
                                      f"{prompt.name} does not exist")
                _recorded(prompt, partial, voice, rate, force)
            else:
                _spoken(prompt.text, voice, rate, partial, force)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)
        target.with_suffix(".txt").write_text(prompt.source, encoding="utf-8")
        written.append(target)
        if progress is not None:
            progress(len(written), len(stale))
    return written


def stale_prompts(directory: Path, prompts: Iterable[Prompt], force: bool = False) -> list[Prompt]:
    """The prompts ``build`` would make: missing, or made from another text or recording."""
    return [p for p in prompts if force or not _current(directory, p)]


def _current(directory: Path, prompt: Prompt) -> bool:
    target = path_of(directory, prompt.name)
    if not target.exists():
        return False
    made_from = target.with_suffix(".txt")
    if not made_from.exists():
        return prompt.name in PROMPTS  # made before texts were kept: the built-in ones stay
    return made_from.read_text(encoding="utf-8") == prompt.source


def _spoken(text: str, voice: str, rate: int, target: Path, force: bool) -> None:
    key = hashlib.sha256(f"v2|{voice}|{rate}|{SAMPLE_RATE}|{text}".encode()).hexdigest()[:32]
    cached = cache_dir() / f"{key}.wav"
    if cached.is_file() and not force:
        shutil.copyfile(cached, target)
        return
    _speak(text, voice, rate, target)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        shutil.copyfile(target, partial)
        partial.replace(cached)
    except OSError:
        pass  # no cache then: the prompt is made again next time


def _recorded(prompt: Prompt, target: Path, voice: str, rate: int, force: bool) -> None:
    """The recording converted, with ``before`` and ``after`` spoken around it."""
    assert prompt.recording is not None
    if not prompt.before and not prompt.after:
        _convert(prompt.recording, target)
        return
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for n, text in enumerate((prompt.before, None, prompt.after)):
            part = Path(tmp) / f"{n}.wav"
            if text is None:
                _convert(prompt.recording, part)
            elif text:
                _spoken(text, voice, rate, part, force)
            else:
                continue
            parts.append(str(part))
        out = Path(tmp) / "out.wav"
        _run(["sox", *parts, str(out)])
        shutil.move(out, target)


def _speak(text: str, voice: str, rate: int, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        _run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(raw), text])
        _convert(raw, target, trim=False)


def _convert(source: Path, target: Path, trim: bool = True) -> None:
    """Any WAV/FLAC/MP3, any rate or channels → 8 kHz mono 16-bit, loudness normalized
    (-3 dBFS peak), silence trimmed from both ends."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        effects = ["silence", "1", "0.05", "0.5%", "reverse", "silence", "1", "0.05", "0.5%",
                   "reverse"] if trim else []
        _run(["sox", str(source), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out),
              *effects, "norm", "-3"])
        shutil.move(out, target)


def _run(argv: list[str]) -> None:
    if shutil.which(argv[0]) is None:
        raise PromptError(f"{argv[0]} is not installed; it is needed to make voice prompts "
                          f"(apt-get install espeak-ng sox)")
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise PromptError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
    except subprocess.TimeoutExpired:
        raise PromptError(f"{argv[0]} took more than 60 s") from None
