"""Voice prompts from recordings: any rate, channels or format in, the engine's WAV out."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

import audio


def recording(path: Path, rate: int, channels: int) -> Path:
    """Half a second of silence, one second of a quiet tone, half a second of silence."""
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), "synth", "1",
                    "sine", "440", "vol", "0.1", "pad", "0.5", "0.5"], check=True, timeout=30)
    return path


def samples(path: Path) -> tuple[int, int, np.ndarray]:
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return w.getframerate(), w.getnchannels(), data


@pytest.mark.parametrize(("name", "rate", "channels"), [
    ("stereo.flac", 44100, 2), ("voice.mp3", 22050, 1), ("wide.wav", 48000, 2)])
def test_a_recording_becomes_8_khz_mono_trimmed_and_normalized(tmp_path: Path, name: str, rate: int,
                                                               channels: int) -> None:
    source = recording(tmp_path / name, rate, channels)
    [made] = audio.build(tmp_path / "prompts", [audio.Prompt("greeting", "", source)])
    got_rate, got_channels, data = samples(made)
    assert (got_rate, got_channels) == (8000, 1)
    assert 0.9 <= len(data) / 8000 <= 1.15  # the silences trimmed (mp3 adds a little)
    peak = np.abs(data).max() / 32768
    assert 0.65 <= peak <= 0.75  # normalized to -3 dBFS from a tone at -20
    again = audio.build(tmp_path / "prompts", [audio.Prompt("greeting", "", source)])
    assert again == []  # only what changed is made again


def test_a_missing_recording_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(audio.PromptError, match="the recording .* of prompt greeting does not exist"):
        audio.build(tmp_path, [audio.Prompt("greeting", "", tmp_path / "absent.wav")])


def test_a_file_recorded_again_under_the_same_name_is_converted_again(tmp_path: Path) -> None:
    source = recording(tmp_path / "greeting.wav", 16000, 1)
    audio.build(tmp_path / "prompts", [audio.Prompt("greeting", "", source)])
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(source), "synth", "2.5", "sine",
                    "300", "vol", "0.1"], check=True, timeout=30)
    [made] = audio.build(tmp_path / "prompts", [audio.Prompt("greeting", "", source)])
    assert 2.4 <= len(samples(made)[2]) / 8000 <= 2.6


def test_a_recorded_warning_still_says_who_calls_and_which_digit(tmp_path: Path) -> None:
    """The center's name before a type's recording, the digits after it: spoken around it."""
    source = recording(tmp_path / "police.wav", 16000, 1)
    bare = audio.build(tmp_path / "bare", [audio.Prompt("warn", "", source)])[0]
    [made] = audio.build(tmp_path / "prompts", [audio.Prompt(
        "warn", "", source, before="您好，这里是反诈中心。", after="听清楚了请按一。")], rate=190)
    assert len(samples(made)[2]) / 8000 > len(samples(bare)[2]) / 8000 + 2.0  # two sentences more


def test_a_pinned_prompt_keeps_its_audio_when_the_prompt_is_made_again(tmp_path: Path) -> None:
    prompt = tmp_path / "warn-general.wav"
    prompt.write_bytes(b"old words")
    pinned = audio.pin(prompt)
    assert pinned.name == prompt.name and pinned != prompt and audio.pin(prompt) == pinned
    made_again = tmp_path / "warn-general.part.wav"
    made_again.write_bytes(b"new words")
    made_again.replace(prompt)  # as build() does it
    assert pinned.read_bytes() == b"old words" and audio.pin(prompt).read_bytes() == b"new words"
    assert audio.unpin(tmp_path, [str(pinned)]) == 1  # the newer one: nobody uses it
    assert pinned.exists() and audio.unpin(tmp_path, []) == 1 and not pinned.parent.exists()
