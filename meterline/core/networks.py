"""Lists of IP networks in settings (``10.0.0.5, 10.1.0.0/16``), parsed one way."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(
    spec: str | Iterable[str] | None, *, name: str = "METERLINE_TRUSTED_PROXIES"
) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks; a bad entry raises ValueError naming it."""
    if spec is None:
        return ()
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    networks: list[Network] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"{name}: {item!r} is not an IP address or CIDR (e.g. 10.0.0.5 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)
