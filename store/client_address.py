"""The client's address behind a reverse proxy: `X-Forwarded-For`, from trusted proxies only.

Behind nginx or Caddy every request comes from the proxy, so the audit log recorded the
proxy's address for everyone. `X-Forwarded-For` names the client, but anyone can send
that header: it is believed only as far as it was added by proxies named in
`VIGIL_TRUSTED_PROXIES`. Walking the chain from the right, each address is the one that
connected to the hop after it; the first that is not a trusted proxy is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """`10.0.0.1, 192.168.0.0/24, ::1` → networks; ValueError naming a bad entry."""
    networks = []
    for part in value.replace(";", ",").split(","):
        entry = part.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: object, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_address(
    remote: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]
) -> str:
    """The client's address: `remote` unless it is a trusted proxy, in which case the
    rightmost address in `X-Forwarded-For` (every such header, in order) that is not one.

    A malformed entry stops the walk: the last address known good is the answer.
    """
    peer = _address(remote or "")
    if peer is None or not _trusted(peer, proxies):
        return remote or ""
    chain = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(chain):
        address = _address(hop)
        if address is None:
            break
        peer = address
        if not _trusted(address, proxies):
            break
    return str(peer)
