"""A host's *site*: its registrable domain, from the offline Public Suffix List (``publicsuffixlist``).

``en.m.wikipedia.org`` -> ``wikipedia.org``; ``blog.example.co.uk`` -> ``example.co.uk``;
``user.github.io`` -> ``user.github.io`` (``github.io`` is itself a public suffix, in the list's
private section, which is used).  An IP address, a host under no suffix the list knows
(``localhost``, ``intranet.corp``, ``bücher.example``) or a bare public suffix is its own site.
The list ships inside the package and is parsed once per process, on first use.
"""

from __future__ import annotations

import ipaddress
from functools import cache, lru_cache

from publicsuffixlist import PublicSuffixList

__all__ = ["site_of"]


@cache
def _suffixes() -> PublicSuffixList:
    # accept_unknown=False: a TLD the list does not know is no suffix (the host is its own site).
    return PublicSuffixList(accept_unknown=False)


@lru_cache(maxsize=8192)
def site_of(host: str) -> str:
    """The registrable domain of ``host`` (lowercased, no trailing dot); the host itself when there is none."""
    h = host.strip().lower().rstrip(".") if isinstance(host, str) else ""
    if not h:
        return ""
    try:
        ipaddress.ip_address(h.strip("[]"))
        return h
    except ValueError:
        pass
    try:
        site = _suffixes().privatesuffix(h)
    except Exception:  # a host the list cannot read is its own site
        site = None
    return site or h
