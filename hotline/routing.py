"""Where an inbound call goes, decided once, before its flow starts (pure).

The engine screens the caller, then asks :func:`route_for`; the
:class:`~hotline.inbound.InboundCall` built for the call follows the route.
"""

from __future__ import annotations

import enum

from screening import Action, Decision, ServiceNumber

__all__ = ["Route", "route_for"]


class Route(enum.Enum):
    REJECT = "reject"  # the decision's final response (603 by default), no media
    NOT_FOUND = "not_found"  # a number this engine does not serve: 404
    OPERATOR = "operator"  # inside operator hours: the operators' queue
    IVR = "ivr"  # outside operator hours: the voice menu


def route_for(decision: Decision, callee: str, hotline: ServiceNumber, operator_hours: bool) -> Route:
    """``callee`` is the request URI's user part, in whatever form the caller dialled it."""
    if decision.action is Action.REJECT:
        return Route.REJECT
    if not hotline.matches(callee):
        return Route.NOT_FOUND
    return Route.OPERATOR if operator_hours else Route.IVR
