"""A Ray cluster's address as `submit --address` takes it: read once, by the command line and
by the connection check alike."""

from __future__ import annotations


def split_address(address: str) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT with a port in 1-65535 (ASCII digits: int()
    would read other scripts' digits too), or None when it is not one."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return None
    return host, int(port)
