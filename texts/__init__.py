"""Texts: the SMS consultation line and the warning texts beside the warning calls.

Texts travel as SIP MESSAGE (RFC 3428) through the softphone workers and the
trunk, where a carrier's SMS gateway turns them into SMS. What a text says
(:mod:`texts.words`), whether it is time for one (:mod:`texts.cadence`), and
how a consultation is answered (:mod:`texts.consultation`) and what the store
keeps (:mod:`texts.model`: states and their transitions) are pure; the stores
(:mod:`stores`) keep every text in and out; the engine (:mod:`engine.texting`)
wires them to the workers.
"""

from .cadence import UNREACHED, warning_text_due
from .model import Message, MessageState, Thread, ThreadState
from .words import Advice, TextBook, TextBookError, load_text_book

__all__ = ["UNREACHED", "Advice", "Message", "MessageState", "TextBook", "TextBookError", "Thread",
           "ThreadState", "load_text_book", "warning_text_due"]
