"""The hotline: operator hours, the after-hours voice menus, messages for callback (pure,
but for the store of messages)."""

from .callbacks import Callback, CallbackError, CallbackStore
from .hours import OperatorHours, official_day
from .ivr import Ivr, IvrStage, MessageSaved, MessageSettings, SaveMessage
from .menus import DEFAULT_MENUS, Action, Kind, Menu, MenuBook, MenuError, load_menus, prompt_file

__all__ = [
    "DEFAULT_MENUS",
    "Action",
    "Callback",
    "CallbackError",
    "CallbackStore",
    "Ivr",
    "IvrStage",
    "Kind",
    "Menu",
    "MenuBook",
    "MenuError",
    "MessageSaved",
    "MessageSettings",
    "OperatorHours",
    "SaveMessage",
    "load_menus",
    "official_day",
    "prompt_file",
]
