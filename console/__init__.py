"""The duty officers' console: a web page where the center watches warnings go out, answers
texts and callbacks, and acts, with sign-in, roles and an audit trail.

Server-rendered HTML (Starlette, Jinja2) in Simplified Chinese or English (gettext), the
live parts pushed by Server-Sent Events; every asset served by the console itself. Every
change goes through :class:`center.Center`, every page reads :class:`center.Views`. It runs
in a process of its own (``run_dialer.py console``, which ``run`` starts when
``console.port`` is set), so no page or report ever holds up the engine's calls.
"""

from .app import Console, make_app, serve

__all__ = ["Console", "make_app", "serve"]
