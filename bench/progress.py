"""What the network says in early media: how fast and how right the worker's listener is.

    python bench/progress.py [--variations 40] [--seed 11]

The listener is the one every softphone worker runs on a warning call's early media
(``audio.progress.EarlyMedia``: the national tones of ``audio.tones`` and the carrier's
announcements of ``audio.announce``), fed 20 ms frames with webrtcvad's verdict beside each,
as the worker feeds it. The library is what a center would build from its carrier: one
recording per class (Mandarin, then the English the carriers add), plus a second wording of
"unreachable" (不在服务区), all spoken by espeak-ng at an announcer's pace (-s 300: about 4.4
syllables a second, as 您拨打的电话正在通话中 takes 2.5 s; espeak's default is half that).
The classes share their first words (您拨打的电话…), so no verdict can come before the words
that differ: that, not the matcher, sets most of the time from the start.

Each variation is what a call could hear: the announcement looped with 0.6 s gaps, or the
tone, joined at a random point (``offset``) or at its start, at a level from −6 to +6 dB,
with white noise at 30 dB SNR, through G.711 μ-law or A-law, after a lead-in of 0–2 s of
silence or ringback tone. Timing is from the start of the announcement or tone (after the
lead-in) to the verdict. Then the negatives: 彩铃 music, spoken greetings in no library
(several voices), the ringback tone and silence, none of which may end a call.
Last, the cost per 20 ms frame, beside webrtcvad's (the speech detector every call runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import webrtcvad
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from sounds import (
    CN_BUSY,
    CN_CONGESTION,
    CN_VACANT,
    MUSIC,
    RATE,
    SIT_SHORT,
    Steps,
    at_level,
    cadence,
    line,
    music,
    ringback,
    silence,
    speak,
)

from audio.announce import Library
from audio.progress import EarlyMedia

LIBRARY = {  # class → what the carrier says (one recording each; unreachable twice)
    "busy": "您拨打的电话正在通话中，请稍后再拨。Sorry, the subscriber you dialed is busy now, "
            "please redial later.",
    "off": "您拨打的电话已关机。Sorry, the subscriber you dialed is power off.",
    "unreachable": "您拨打的电话暂时无法接通，请稍后再拨。Sorry, the subscriber you dialed cannot "
                   "be connected for the moment, please redial later.",
    "unreachable-2": "您拨打的用户不在服务区。Sorry, the subscriber you dialed is out of the "
                     "service area.",
    "invalid": "您拨打的号码是空号，请查证后再拨。Sorry, the number you dialed does not exist, "
               "please check it and dial later.",
    "suspended": "您拨打的电话已停机。Sorry, the number you dialed has been suspended.",
}
GREETINGS = [
    "您好，欢迎致电鑫源五金商行，我们的营业时间是早上八点到晚上九点。",
    "亲爱的朋友，您好，我正在忙，请稍候，马上为您接听。",
    "感谢您的来电，祝您工作顺利，身体健康，万事如意。",
    "您好，这里是平安保险，我们竭诚为您服务，请不要挂机。",
    "欢迎光临小王水果店，新鲜水果当日送达，电话接通中，请稍候。",
]
ANNOUNCER = 300  # espeak-ng's speed for a carrier's announcer (words a minute)
VOICES = [("cmn", 170, 50), ("cmn", 260, 35), ("cmn+f3", 300, 65)]
TONES: dict[str, Steps] = {"busy": CN_BUSY, "congestion": CN_CONGESTION, "vacant": CN_VACANT,
                           "sit": SIT_SHORT}


@dataclass
class Case:
    kind: str  # "announcement" or "tone"
    expected: str  # the class or the tone
    audio: np.ndarray
    lead_s: float  # before the announcement or tone starts


def on_the_line(x: np.ndarray, rng: np.random.Generator,
                reference: np.ndarray | None = None) -> np.ndarray:
    """At −6 to +6 dB, with noise at 30 dB SNR, through μ-law or A-law."""
    return line(x, rng, "ulaw" if rng.random() < 0.5 else "alaw", float(rng.uniform(-6, 6)),
                30.0, reference)


def lead_in(rng: np.random.Generator) -> np.ndarray:
    seconds = float(rng.uniform(0, 2))
    if rng.random() < 0.5:
        return silence(seconds)
    return ringback(seconds, float(rng.uniform(-24, -6)))


def loop(pcm: np.ndarray, seconds: float, offset_s: float) -> np.ndarray:
    once = np.concatenate([pcm, silence(0.6)])
    times = int(np.ceil((seconds + offset_s) * RATE / once.size)) + 1
    return np.tile(once, times)[round(offset_s * RATE):][:round(seconds * RATE)]


def cases(rng: np.random.Generator, spoken: dict[str, np.ndarray], n: int,
          joined: bool) -> list[Case]:
    out = []
    for name, pcm in spoken.items():
        for _ in range(n):
            offset = float(rng.uniform(0, pcm.size / RATE)) if joined else 0.0
            lead = lead_in(rng)
            audio = on_the_line(np.concatenate([lead, loop(pcm, 10.0, offset)]), rng, pcm)
            out.append(Case("announcement", name.split("-")[0], audio, lead.size / RATE))
    for tone, steps in TONES.items():
        for _ in range(n):
            lead = lead_in(rng)
            start = float(rng.uniform(0, sum(s for _, s in steps))) if joined else 0.0
            body = cadence(steps, float(rng.uniform(-25, 0)), 8.0, rng, 0.1, start)
            audio = on_the_line(np.concatenate([lead, body]), rng, body)
            out.append(Case("tone", tone, audio, lead.size / RATE))
    return out


def negatives(rng: np.random.Generator, n: int) -> list[tuple[str, np.ndarray]]:
    out: list[tuple[str, np.ndarray]] = []
    for i in range(n):
        out.append((f"彩铃 music {i + 1}", on_the_line(music(rng, 15.0), rng)))
    for name, make in MUSIC.items():  # pieces made to look like the tones
        tune = at_level(make(rng), float(rng.uniform(-25, -3)))
        out.append((f"彩铃 {name}", on_the_line(np.tile(tune, 2), rng)))
    for text in GREETINGS:
        for voice, speed, pitch in VOICES:
            said = speak(text, voice, speed, pitch)
            out.append((f"greeting ({voice})", on_the_line(loop(said, 15.0, 0.0), rng)))
    out.append(("ringback tone", on_the_line(ringback(30.0), rng)))
    out.append(("silence", silence(10.0)))
    return out


def listen(listener: EarlyMedia, audio: np.ndarray, vad: webrtcvad.Vad) -> tuple[
        object, list[float]]:
    """Feeds the frames as the worker does; the first final verdict and µs per frame."""
    costs = []
    for i in range(0, audio.size - 159, 160):
        pcm = audio[i:i + 160].astype("<i2").tobytes()
        voiced = vad.is_speech(pcm, RATE)
        started = time.perf_counter()
        heard = listener.feed(pcm, voiced)
        costs.append((time.perf_counter() - started) * 1e6)
        if heard is not None and heard.final:
            return heard, costs
    return None, costs


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variations", type=int, default=40,
                        help="per class and tone, for each way of joining (start, anywhere)")
    parser.add_argument("--music", type=int, default=60, help="彩铃 music pieces")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    console = Console(width=None if sys.stdout.isatty() else 150)
    spoken = {name: speak(text, speed=ANNOUNCER) for name, text in LIBRARY.items()}
    library = Library()
    for name, pcm in spoken.items():
        library.add(name, name.split("-")[0], pcm)
    vad = webrtcvad.Vad(2)

    def new() -> EarlyMedia:
        return EarlyMedia("cn", library, answered_s=6.0)

    times: dict[tuple[str, bool], list[float]] = defaultdict(list)
    wrong: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    costs: list[float] = []
    for joined in (False, True):
        for case in cases(rng, spoken, args.variations, joined):
            heard, cost = listen(new(), case.audio, vad)
            costs.extend(cost)
            key = f"{case.kind} {case.expected}"
            total[key] += 1
            if heard is None:
                missed[key] += 1
            elif (heard.by, heard.what) != (case.kind, case.expected):  # type: ignore[attr-defined]
                wrong[key] += 1
            else:
                times[(key, joined)].append(heard.after_s - case.lead_s)  # type: ignore[attr-defined]
    false_failures: list[str] = []
    negative_count = 0
    for name, audio in negatives(rng, args.music):
        heard, cost = listen(new(), audio, vad)
        costs.extend(cost)
        negative_count += 1
        if heard is not None:
            false_failures.append(f"{name}: {heard}")

    table = Table(title="what early media said: time from its start to the verdict, accuracy",
                  title_justify="left")
    for column in ("heard", "variations", "right", "missed", "wrong", "p50 from its start (s)",
                   "p95", "p50 joined anywhere (s)", "p95 ", "max"):
        table.add_column(column, justify="left" if column == "heard" else "right")
    right_all = 0
    for key in total:
        start, anywhere = times[(key, False)], times[(key, True)]
        right = len(start) + len(anywhere)
        right_all += right
        table.add_row(key, str(total[key]), str(right), str(missed[key]), str(wrong[key]),
                      f"{percentile(start, 50):.2f}", f"{percentile(start, 95):.2f}",
                      f"{percentile(anywhere, 50):.2f}", f"{percentile(anywhere, 95):.2f}",
                      f"{max(start + anywhere, default=float('nan')):.2f}")
    console.print(table)
    accuracy = right_all / sum(total.values())
    console.print(f"accuracy: {right_all} of {sum(total.values())} right "
                  f"({accuracy:.1%}; target ≥ 99 %: {'met' if accuracy >= 0.99 else 'missed'}); "
                  f"wrong {sum(wrong.values())}, missed {sum(missed.values())}")
    console.print(f"false failures on {negative_count} clips of 彩铃, greetings, ringback and "
                  f"silence: {len(false_failures)} (target 0: "
                  f"{'met' if not false_failures else 'missed'})")
    for item in false_failures:
        console.print(f"  {item}")
    all_start = [t for (k, joined), v in times.items() if not joined and k.startswith("ann")
                 for t in v]
    console.print(f"announcements from their start: p50 {percentile(all_start, 50):.2f} s, "
                  f"p95 {percentile(all_start, 95):.2f} s (target: decided within 3 s)")

    vad_cost = per_frame(lambda pcm: vad.is_speech(pcm, RATE))
    costs.sort()
    console.print(f"cost per 20 ms frame: listener mean {statistics.fmean(costs):.1f} µs "
                  f"(p50 {costs[len(costs) // 2]:.1f}, p99 {costs[int(len(costs) * 0.99)]:.1f}, "
                  f"max {costs[-1]:.0f}: the matching step every 0.25 s); "
                  f"webrtcvad {vad_cost:.1f} µs")
    return 0


def per_frame(work: Callable[[bytes], object]) -> float:
    frame = (np.random.default_rng(1).normal(0, 3000, 160)).astype("<i2").tobytes()
    for _ in range(200):
        work(frame)
    started = time.perf_counter()
    for _ in range(5000):
        work(frame)
    return (time.perf_counter() - started) / 5000 * 1e6


if __name__ == "__main__":
    sys.exit(main())
