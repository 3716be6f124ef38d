"""``run_dialer.py announcements``: the library of the carrier's announcements, as an operator
keeps it; bad input is one sentence and adds nothing."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from dialerctl import cli
from enginectl import write_config
from sounds import speech_wav

from audio.library import Library, keep_heard

BUSY = "您拨打的电话正在通话中，请稍后再拨。"


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def listed(config: Path) -> list[dict]:
    return [json.loads(line) for line in
            cli(config, "announcements", "list", "--json").stdout.splitlines()]


def refused(config: Path, *args: str) -> str:
    result = cli(config, "announcements", *args, check=False)
    assert result.returncode == 1 and result.stdout == "", result
    [sentence] = result.stderr.strip().splitlines()  # one sentence, no traceback
    return sentence


def test_add_any_format_sox_reads_list_and_remove(config: Path, tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "busy.wav", BUSY)
    mp3 = tmp_path / "busy.mp3"  # the carrier sent an MP3 at 44.1 kHz stereo
    subprocess.run(["sox", str(wav), "-r", "44100", "-c", "2", str(mp3)], check=True, timeout=30)
    added = cli(config, "announcements", "add", str(mp3), "--as", "busy", "--carrier", "中国移动")
    entry_id = added.stdout.strip()
    assert "added announcement" in added.stderr
    [entry] = listed(config)
    assert (entry["id"], entry["class"], entry["carrier"]) == (entry_id, "busy", "中国移动")
    assert entry["seconds"] > 2 and entry["matchable_s"] >= 1.0 and entry["source"] == str(mp3)
    library = Library(config.parent / "var" / "announcements")
    [(stored, pcm)] = list(library.references())
    assert stored.id == entry_id and abs(len(pcm) / 8000 - entry["seconds"]) < 0.05
    assert "announcements" in cli(config, "announcements", "list").stdout
    cli(config, "announcements", "remove", entry_id)
    assert listed(config) == []
    assert refused(config, "remove", entry_id) == (
        f"error: there is no announcement {entry_id} (see: announcements list)")


TOO_SHORT = (r"error: nothing added: the recording has 0\.\d s of sound the matcher can use; "
             r"at least 1 s is needed$")


@pytest.mark.parametrize(("make", "sentence"), [
    ("text", r"error: nothing added: sox cannot read notes\.txt: \S"),
    ("missing", r"error: nothing added: \S+nowhere\.wav is not a file$"),
    ("short", TOO_SHORT),  # half a second of speech
    ("silence", TOO_SHORT),
])
def test_a_file_that_cannot_be_used_is_refused_and_nothing_added(
        config: Path, tmp_path: Path, make: str, sentence: str) -> None:
    if make == "text":
        path = tmp_path / "notes.txt"
        path.write_text("not a recording\n")
    elif make == "missing":
        path = tmp_path / "nowhere.wav"
    elif make == "short":
        path = tmp_path / "short.wav"
        subprocess.run(["sox", str(speech_wav(tmp_path / "busy.wav", BUSY)), str(path), "trim",
                        "0.3", "0.5"], check=True, timeout=30)
    else:
        path = tmp_path / "silence.wav"
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(path), "trim", "0", "5"],
                       check=True, timeout=30)
    assert re.match(sentence, refused(config, "add", str(path), "--as", "busy"))
    assert listed(config) == []


def test_an_unknown_class_is_refused(config: Path, tmp_path: Path) -> None:
    wav = speech_wav(tmp_path / "busy.wav", BUSY)
    assert refused(config, "add", str(wav), "--as", "engaged") == (
        "error: nothing added: 'engaged' is not a class of announcement: write one of busy, off, "
        "unreachable, invalid, suspended, ringing")
    assert refused(config, "add", "--as", "busy") == (
        "error: name either a FILE or --from-heard ID, not both or neither")
    assert listed(config) == []


def test_heard_clips_are_listed_added_and_removed_after_the_days_kept(config: Path) -> None:
    heard = Library(config.parent / "var" / "announcements").heard_dir
    speech = np.frombuffer(speech_wav(config.parent / "s.wav", BUSY).read_bytes()[44:], "<i2")
    now = time.time()
    old = keep_heard(heard, speech, 480, 2.0, "t1-1", now - 8 * 86400)  # older than 7 days
    new = keep_heard(heard, speech, 408, 2.4, "t2-3", now - 3600)
    clips = [json.loads(line) for line in
             cli(config, "announcements", "heard", "--json").stdout.splitlines()]
    assert [(c["id"], c["status"], c["call"]) for c in clips] == [(new.id, 408, "t2-3")]
    assert not (heard / f"{old.id}.wav").exists()
    assert refused(config, "add", "--from-heard", old.id, "--as", "busy") == (
        f"error: nothing added: there is no heard clip {old.id} (see: announcements heard)")
    added = cli(config, "announcements", "add", "--from-heard", new.id, "--as", "off").stdout
    [entry] = listed(config)
    assert entry["id"] == added.strip() and entry["source"] == f"heard:{new.id}"
    assert entry["class"] == "off"
