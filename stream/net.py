"""Plain TCP helpers for bootstrap addresses (no Kafka protocol, no broker specifics)."""

from __future__ import annotations

import socket

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def split_host_port(server: str) -> tuple[str, int]:
    """Host and port of one ``host:port`` bootstrap address (``[::1]:9092`` style accepted)."""
    server = server.strip()
    host, sep, port = server.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"bootstrap server {server!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def port_open(host: str, port: int, timeout_s: float = 0.25) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def any_reachable(bootstrap_servers: str, timeout_s: float = 1.0) -> bool:
    """Whether at least one of the comma-separated bootstrap servers accepts TCP connections."""
    return any(
        port_open(*split_host_port(server), timeout_s=timeout_s)
        for server in bootstrap_servers.split(",")
        if server.strip()
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for tests and throwaway brokers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
