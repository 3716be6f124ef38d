"""A small voice-menu book for the pure tests: two levels, a multi-digit option, a message."""

from __future__ import annotations

from pathlib import Path

from hotline import Action, Kind, Menu, MenuBook


def menu(mid: str, options: dict[str, Action], invalid: str = "", **settings: float) -> Menu:
    base = {"timeout_s": 10.0, "inter_digit_s": 3.0, "max_failures": 3, "max_timeouts": 3}
    base.update(settings)
    return Menu(mid, f"{mid}_long", f"{mid}_short", options, base["timeout_s"],
                base["inter_digit_s"], int(base["max_failures"]), int(base["max_timeouts"]),
                invalid)


PROMPT_IDS = ("welcome", "goodbye", "invalid", "main_long", "main_short", "types_long",
              "types_short", "six_rules", "type_loan", "type_investment", "message_intro",
              "message_thanks", "message_failed", "type_prize", "types_invalid")
BOOK = MenuBook(Path("menus.yaml"), "main", "welcome", "goodbye", "invalid",
                {pid: (pid, None) for pid in PROMPT_IDS}, {
                    "main": menu("main", {
                        "1": Action(Kind.MENU, "types"),
                        "2": Action(Kind.SAY, "six_rules"),
                        "3": Action(Kind.MESSAGE),
                    }),
                    "types": menu("types", {
                        "1": Action(Kind.SAY, "type_loan", "loan"),
                        "2": Action(Kind.SAY, "type_investment", "investment"),
                        "12": Action(Kind.SAY, "type_prize", "prize_winning"),
                    }, invalid="types_invalid"),
                })


def wav(prompt_id: str) -> str:
    return f"{prompt_id}.wav"
