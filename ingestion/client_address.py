"""Who is on the other end of a connection, and whether to believe what it forwards.

``METERLINE_TRUSTED_PROXIES`` (comma-separated addresses or CIDRs; unset: none) lists the
reverse proxies whose forwarded headers are believed. Only a request whose TCP peer is one of
them may name its client (``X-Forwarded-For``) or, where a middleware allows it, its tenant
(``X-Tenant-ID``). Anyone else's forwarded headers are ignored: the peer address is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from meterline.core.networks import parse_networks


class TrustedProxies:
    """The proxies whose forwarded headers count; empty (the default) trusts nobody."""

    def __init__(self, spec: str | Iterable[str] | None = None):
        self.networks = parse_networks(spec)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if not host or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def peer_is_trusted(self, scope) -> bool:
        return self.trusts(peer(scope))

    def client_address(self, scope) -> str:
        """The peer; behind a trusted proxy, the nearest ``X-Forwarded-For`` hop that is not
        itself a trusted proxy."""
        address = peer(scope)
        if not self.trusts(address):
            return address
        for name, value in scope.get("headers") or ():
            if name == b"x-forwarded-for":
                hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
                for hop in reversed(hops):
                    if not self.trusts(hop):
                        return hop[:64]
        return address


def peer(scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""
