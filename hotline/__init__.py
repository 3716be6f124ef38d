"""The hotline: the inbound call and its route, operator hours, the operators' queue, the
after-hours voice menus, messages for callback (pure: the stores keep the messages)."""

from .callbacks import Callback, CallbackState
from .hours import OperatorHours, official_day
from .inbound import InboundCall, Prompts, QueueSettings
from .ivr import Ivr, IvrStage, MessageSaved, MessageSettings, SaveMessage
from .menus import DEFAULT_MENUS, Action, Kind, Menu, MenuBook, MenuError, load_menus, prompt_file
from .routing import Route, route_for

__all__ = [
    "DEFAULT_MENUS",
    "Action",
    "Callback",
    "CallbackState",
    "InboundCall",
    "Ivr",
    "IvrStage",
    "Kind",
    "Menu",
    "MenuBook",
    "MenuError",
    "MessageSaved",
    "MessageSettings",
    "OperatorHours",
    "Prompts",
    "QueueSettings",
    "Route",
    "SaveMessage",
    "load_menus",
    "official_day",
    "prompt_file",
    "route_for",
]
