"""Reading the few things the worker needs out of a raw SIP message: pure.

pjsua2 hands incoming requests over as text (``SipRxData.wholeMsg``) and
source addresses as ``ip:port`` strings; these helpers turn them into the
fields of the ``incoming`` and ``refused`` events.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

COMPACT_FORMS = {"from": "f", "to": "t", "contact": "m", "call-id": "i"}


def header(message: str, name: str) -> str | None:
    """Value of the first header ``name`` (or its compact form), unfolded."""
    found = headers(message, name)
    return found[0] if found else None


def headers(message: str, name: str) -> list[str]:
    """Values of every header ``name`` (or its compact form), unfolded, in order."""
    wanted = {name.lower()}
    if name.lower() in COMPACT_FORMS:
        wanted.add(COMPACT_FORMS[name.lower()])
    head = message.replace("\r\n", "\n").split("\n\n", 1)[0]
    lines = head.split("\n")[1:]
    found = []
    for i, line in enumerate(lines):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in wanted:
            parts = [value.strip()]
            for cont in lines[i + 1:]:
                if not cont[:1].isspace():
                    break
                parts.append(cont.strip())
            found.append(" ".join(parts))
    return found


def audio_lines(message: str) -> int:
    """Audio lines of the message's SDP offer that pjsua would open a transport for (an
    ``m=audio`` line whose port is not 0); 0 without SDP."""
    body = message.replace("\r\n", "\n").partition("\n\n")[2]
    count = 0
    for line in body.split("\n"):
        if line.startswith("m=audio "):
            port = line.split(" ", 2)[1].split("/", 1)[0]
            count += port != "0"
    return count


def request_uri(message: str) -> str:
    first = message.lstrip().split("\n", 1)[0].split()
    return first[1] if len(first) >= 2 else ""


def user_part(value: str) -> str:
    """``"Bob" <sip:1380013@host;user=phone>;tag=x`` -> ``1380013``; ``tel:+86..`` -> ``+86..``."""
    uri = _addr_spec(value)
    scheme, sep, rest = uri.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips", "tel"):
        rest = uri
    if scheme.lower() == "tel":
        return rest.split(";", 1)[0]
    if "@" not in rest:
        return ""
    return rest.split("@", 1)[0].split(";", 1)[0]


def display_name(value: str) -> str:
    if "<" not in value:
        return ""
    return value.split("<", 1)[0].strip().strip('"').strip()


def _addr_spec(value: str) -> str:
    value = value.strip()
    if "<" in value and ">" in value.split("<", 1)[1]:
        return value.split("<", 1)[1].split(">", 1)[0].strip()
    return value.split(";", 1)[0].strip() if value.lower().startswith("tel:") else (
        value.split(";tag=", 1)[0].strip()
    )


def caller_of(message: str) -> tuple[str, str]:
    """(caller user part, display name): P-Asserted-Identity if present, else From."""
    for name in ("P-Asserted-Identity", "From"):
        value = header(message, name)
        if value:
            first = value.split(",", 1)[0] if name != "From" else value
            return user_part(first), display_name(first)
    return "", ""


def source_ip(source: str) -> str:
    """``127.0.0.1:5060`` -> ``127.0.0.1``; ``[::1]:5060`` -> ``::1``."""
    if source.startswith("["):
        return source[1:].split("]", 1)[0]
    if source.count(":") == 1:
        return source.split(":", 1)[0]
    return source


def host_of(address: str) -> str:
    """``1.2.3.4:5060`` → ``1.2.3.4``; ``[::1]:5060`` → ``::1`` (compared with ``--front``)."""
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or "]" in address else address
    return host.strip("[]")


@dataclass(frozen=True)
class SourcePolicy:
    """Which source addresses may send INVITEs; an empty list allows every source."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str]) -> SourcePolicy:
        return cls(tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def allows(self, source: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(source_ip(source))
        except ValueError:
            return False
        return any(ip in net for net in self.networks if net.version == ip.version)
