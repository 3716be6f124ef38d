"""Texts: the SMS consultation line and the warning texts beside the warning calls.

Texts travel as SIP MESSAGE (RFC 3428) through the softphone workers and the
trunk, where a carrier's SMS gateway turns them into SMS. What a text says
(:mod:`texts.words`), whether it is time for one (:mod:`texts.cadence`), and
how a consultation is answered are pure; :mod:`texts.store` keeps every text
in and out; the engine (:mod:`engine.texting`) wires them to the workers.
"""

from .cadence import UNREACHED, warning_text_due
from .store import Message, TextStore, TextStoreError, TextStoreUnavailable, Thread
from .words import Advice, TextBook, TextBookError, load_text_book

__all__ = ["UNREACHED", "Advice", "Message", "TextBook", "TextBookError", "TextStore",
           "TextStoreError", "TextStoreUnavailable", "Thread", "load_text_book", "warning_text_due"]
