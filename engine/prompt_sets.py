"""Every prompt the engine may play, in one list: built-in, voice menus, warning calls.

``Engine.start`` and ``run_dialer.py prompts build`` both make what is
missing from this list (espeak-ng, or the recording given), and nothing else.
"""

from __future__ import annotations

from pathlib import Path

import audio
from settings import Settings
from sip_config import LoadedConfig

__all__ = ["PROMPT_RATE", "PromptSet", "prompt_sets"]

PROMPT_RATE = 190  # espeak-ng speed of menus and warnings: clear for the elderly, not slow

PromptSet = tuple[str, list[audio.Prompt], int]  # (what, prompts, speaking rate)


def prompt_sets(settings: Settings) -> list[PromptSet]:
    config = settings.config
    d = config.dialer
    warnings = settings.catalog.prompts(center=d.center_name, ack=d.ack_digit,
                                        officer=d.officer_digit,
                                        callback=config.sip.trunk.caller_id)
    return [("built-in", list(audio.PROMPTS.values()), PROMPT_RATE),
            ("voice menus", settings.menus.audio_prompts(), PROMPT_RATE),
            ("warning calls", warnings, PROMPT_RATE)]


def prompt_dir(loaded: LoadedConfig) -> Path:
    return loaded.data_dir / "prompts"
