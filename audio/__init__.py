"""Audio for calls: voice prompts made from their text."""

from .prompts import PROMPTS, Prompt, PromptError, build, path_of, pin, stale_prompts, unpin

__all__ = ["PROMPTS", "Prompt", "PromptError", "build", "path_of", "pin", "stale_prompts",
           "unpin"]
