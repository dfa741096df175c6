"""IP addresses, for `REDACT_IPS`: IPv4 anchored on its first dot, IPv6 checked by parsing."""

from __future__ import annotations

import ipaddress
import re

from analysis.markers import marker

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"


# Anchored on the first dot; the first octet (checked by the lookbehinds) is found by scanning
# back. Not after a digit or dot, nor followed by one: `1.2.3.4.5` is not an address.
IPV4_TAIL = re.compile(
    r"\.(?:(?<=(?<![0-9.])[0-9]\.)|(?<=(?<![0-9.])[1-9][0-9]\.)"
    r"|(?<=(?<![0-9.])(?:1[0-9]{2}|2[0-4][0-9]|25[0-5])\.))"
    rf"{_OCTET}\.{_OCTET}\.{_OCTET}(?![0-9]|\.[0-9])"
)


IPV6_HINT = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")


IPV6 = re.compile(
    r"[0-9A-Fa-f:](?<![A-Za-z0-9:.%](?<!\\[nrt])[0-9A-Fa-f:])"
    r"(?=[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:)"
    r"[0-9A-Fa-f:.]*+(?:%[A-Za-z0-9_.-]+)?(?![A-Za-z0-9:%])"
)


def replace_ipv6(match: re.Match[str], text: str) -> str:
    """Keeps what only looks like IPv6 (times, MAC addresses, `a::b` in code): the candidate
    must parse and have two groups, so `::1` and a `[::2]` slice stay. A trailing dot ends the
    sentence, not the address."""
    candidate = match.group(0)
    core = candidate.rstrip(".")
    address = core.split("%", 1)[0]
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return candidate
    if sum(1 for group in re.split(r"[:.]", address) if group) < 2:
        return candidate
    return marker("ip") + candidate[len(core) :]
