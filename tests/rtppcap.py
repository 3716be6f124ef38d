"""Captures for SIPp's ``play_pcap_audio``, made here: one RTP stream of G.711 mu-law audio
and RFC 2833 telephone events, 20 ms a packet, one SSRC, continuous sequence numbers.

SIPp replays the RTP header and payload as they are and rewrites addresses and
ports, so only the RTP part and the packet times matter. The telephone-event
payload type must be the one the far end offered (pjsua2 offers 120): pjmedia
drops events of any other type.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

__all__ = ["EVENT_PT", "to_ulaw", "write_pcap"]

EVENT_PT = 120  # what pjsua2 2.15 offers for telephone-event/8000
FRAME = 160  # mu-law bytes in 20 ms
SILENCE = b"\xff" * FRAME
EVENTS = {**{str(i): i for i in range(10)}, "*": 10, "#": 11}


def to_ulaw(wav: Path) -> bytes:
    """Raw mu-law 8 kHz mono from any WAV (sox), padded to whole 20 ms packets."""
    raw = subprocess.run(["sox", str(wav), "-r", "8000", "-c", "1", "-t", "ul", "-"],
                         capture_output=True, check=True, timeout=30).stdout
    return raw + b"\xff" * (-len(raw) % FRAME)


def _udp_frame(rtp: bytes) -> bytes:
    udp = struct.pack(">HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                     bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
    total = sum(struct.unpack(">10H", ip))
    total = (total & 0xFFFF) + (total >> 16)
    checksum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
    ip = ip[:10] + struct.pack(">H", checksum) + ip[12:]
    return b"\x00" * 12 + b"\x08\x00" + ip + udp  # Ethernet II, IPv4


def write_pcap(path: Path, audio: bytes = b"", digits: tuple[tuple[str, int], ...] = (),
               until_ms: int = 0, tail_ms: int = 200, event_pt: int = EVENT_PT,
               event_ms: int = 200, first: tuple[tuple[str, int], ...] = ()) -> Path:
    """Each ``(digit, at_ms)`` of ``first``, then ``audio`` (mu-law), silence to ``until_ms``,
    then each ``(digit, at_ms)`` of ``digits``; silence between."""
    packets: list[tuple[int, bytes]] = []
    seq, ts0, ssrc = 1000, 16000, 0x5EED1234
    t = 0

    def rtp(pt: int, marker: bool, ts: int, payload: bytes) -> None:
        nonlocal seq
        header = struct.pack(">BBHII", 0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF,
                             ts & 0xFFFFFFFF, ssrc)
        packets.append((t, header + payload))
        seq += 1

    def silence_to(end: int) -> None:
        nonlocal t
        while t < end:
            rtp(0, not packets, ts0 + t * 8, SILENCE)
            t += 20

    def event(digit: str, at: int) -> None:
        nonlocal t
        silence_to(at)
        start, count = ts0 + t * 8, max(1, event_ms // 20)
        for k in range(1, count + 1):
            end = k == count
            payload = struct.pack(">BBH", EVENTS[digit], (0x80 if end else 0) | 10, k * FRAME)
            for _ in range(3 if end else 1):  # the end of an event is sent three times
                rtp(event_pt, k == 1, start, payload)
            t += 20

    for digit, at in first:
        event(digit, at)
    for i in range(0, len(audio), FRAME):
        rtp(0, not packets, ts0 + t * 8, audio[i:i + FRAME].ljust(FRAME, b"\xff"))
        t += 20
    silence_to(until_ms)
    for digit, at in digits:
        event(digit, at)
    silence_to(t + tail_ms)
    with path.open("wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for at, packet in packets:
            frame = _udp_frame(packet)
            out.write(struct.pack("<IIII", at // 1000, (at % 1000) * 1000, len(frame), len(frame)))
            out.write(frame)
    return path
