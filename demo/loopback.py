"""Free ports on loopback, for setups that pick their own: the demo, and the tests and
benchmarks that start workers and peers beside each other."""

from __future__ import annotations

import socket

__all__ = ["free_tcp_port", "free_udp_port", "free_udp_run"]


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_run(count: int, step: int = 1, even: bool = False, host: str = "127.0.0.1") -> int:
    """The first of ``count`` UDP ports ``step`` apart, all free right now."""
    for _ in range(200):
        base = free_udp_port(host) & (~1 if even else ~0)
        if base + count * step > 65000:
            continue
        held: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind((host, base + i * step))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no run of {count} free UDP ports on {host}")
