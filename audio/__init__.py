"""Audio for calls: voice prompts made from their text."""

from .prompts import PROMPTS, Prompt, PromptError, build, path_of, stale_prompts

__all__ = ["PROMPTS", "Prompt", "PromptError", "build", "path_of", "stale_prompts"]
