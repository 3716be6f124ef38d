"""Voice prompts: each has a text; ``build`` speaks the missing ones into 8 kHz WAV files.

espeak-ng's Mandarin voice (``cmn``) speaks, sox converts to what the softphone
plays best (8 kHz, mono, 16-bit): no resampling on the call path.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PROMPTS", "Prompt", "PromptError", "build", "path_of"]


@dataclass(frozen=True)
class Prompt:
    name: str
    text: str


PROMPTS: dict[str, Prompt] = {p.name: p for p in (
    Prompt("welcome",
           "您好，这里是反诈预警咨询热线。现在是夜间，值班民警每天早上八点到晚上十点接听。"
           "如果您已经被骗、钱已经转出，请马上挂断，拨打一一零报警。"
           "凡是自称公检法、要求您把钱转到安全账户的，都是诈骗。"),
    Prompt("warning",
           "请注意，这个来电号码被反诈系统标记为可疑。"
           "凡是让您转账汇款、提供验证码、下载陌生软件的，都是诈骗，请不要转账。"),
    Prompt("connecting", "正在为您转接反诈中心值班民警，请稍候。"),
)}

SAMPLE_RATE = 8000


class PromptError(Exception):
    """A prompt cannot be made (a tool is missing or failed)."""


def path_of(directory: Path, name: str) -> Path:
    return directory / f"{name}.wav"


def build(directory: Path, names: list[str] | None = None, voice: str = "cmn",
          force: bool = False) -> list[Path]:
    """Make every missing prompt WAV in ``directory``; returns the files written."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is not installed; it is needed to make voice prompts "
                              f"(apt-get install espeak-ng sox)")
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(PROMPTS):
        target = path_of(directory, name)
        if target.exists() and not force:
            continue
        _speak(PROMPTS[name].text, voice, target)
        written.append(target)
    return written


def _speak(text: str, voice: str, target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        out = Path(tmp) / "out.wav"
        _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(raw), text])
        _run(["sox", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(out)])
        shutil.move(out, target)


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except subprocess.CalledProcessError as exc:
        raise PromptError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None
    except subprocess.TimeoutExpired:
        raise PromptError(f"{argv[0]} took more than 60 s") from None
