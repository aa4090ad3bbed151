"""Provider-neutral citation helpers: one URL form, one domain rule, one dedupe rule.

Every platform reports sources differently; analytics group and count them across platforms, so
URLs are normalised the same way everywhere (with ``yarl``) and each answer lists a URL once.  Each
:class:`~.results.Citation` also carries its *site*, the registrable domain (see :mod:`.sites`).

Position rule (all platforms): sources the answer text cites come first, in order of first
appearance in the text; sources that were only retrieved follow, in the order the provider listed
them.  Positions are 1-based.  A URL both cited and retrieved is one citation with ``cited=True``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from yarl import URL

from .results import Citation
from .sites import site_of

__all__ = [
    "TRACKING_PARAMS",
    "CitationBuilder",
    "domain_from_title",
    "domain_of",
    "normalize_url",
    "numbered_markers",
    "site_of",
]

# Click identifiers ad and mail platforms append to links; like ``utm_*``, they name the visit, not the page.
TRACKING_PARAMS = frozenset({
    "gclid", "dclid", "gbraid", "wbraid",  # Google Ads / Display & Video (DoubleClick), iOS app campaigns
    "srsltid",  # Google Merchant Center auto-tagging of organic shopping results
    "fbclid", "igshid",  # Meta: Facebook click id, Instagram share id
    "msclkid",  # Microsoft Advertising
    "yclid",  # Yandex Direct
    "mc_cid", "mc_eid",  # Mailchimp campaign and subscriber
    "_hsenc", "_hsmi",  # HubSpot email
    "ref_src",  # X/Twitter embeds (ref_src=twsrc^tfw)
})


def _tracking(piece: str) -> bool:
    key = piece.split("=", 1)[0].lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def _kept_query(query: str) -> str:
    """Filter the raw ``&``-separated pieces, so the kept ones stay as they were and in order."""
    return "&".join(piece for piece in query.split("&") if piece and not _tracking(piece))


def normalize_url(url: str) -> str:
    """One form per page; never raises, and normalising twice changes nothing.

    An absolute URL with a host: scheme and host lowercased, the host in IDNA (``xn--``) form and the
    scheme's default port dropped (the authority is rebuilt by ``yarl``); percent-encoding normalised
    as RFC 3986 (6.2.2) says: ``%7e`` is ``~`` (unreserved characters decoded), hex digits upper
    case, nothing else decoded or encoded, so a provider's raw URL is otherwise kept as sent; the
    fragment, ``utm_*`` and the click ids of :data:`TRACKING_PARAMS` removed; the rest of the query
    kept in order because it can identify the page (``?id=42``); an empty http(s) path is ``/``.
    Anything else (no scheme or no host) only loses the fragment and tracking params; garbage comes
    back stripped but otherwise unchanged, so nothing a provider sends is lost.
    """
    if not isinstance(url, str):
        return ""
    text = url.strip()
    once = _normalize(text).strip()
    # Every step above is idempotent; should some input still prove otherwise, the stripped text
    # stands, which keeps normalize_url idempotent by construction.
    return once if _normalize(once).strip() == once else text


_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct(text: str) -> str:
    """RFC 3986 6.2.2.1-2: decode percent-encoded unreserved characters, upper-case the other escapes."""
    def one(m: re.Match[str]) -> str:
        c = chr(int(m.group(1), 16))
        return c if c in _UNRESERVED else "%" + m.group(1).upper()

    return _PCT.sub(one, text) if "%" in text else text


def _normalize(text: str) -> str:
    try:
        parts = urlsplit(text)
        if parts.scheme and parts.netloc:
            authority = URL(f"{parts.scheme}://{parts.netloc}")  # lowercase, IDNA, default port dropped
            if authority.raw_host:
                path = _pct(parts.path) or ("/" if authority.scheme in ("http", "https") else "")
                query = _kept_query(_pct(parts.query))
                return f"{authority}{path}?{query}" if query else f"{authority}{path}"
    except (ValueError, TypeError, UnicodeError):
        pass
    return _loose(text)


def _loose(text: str) -> str:
    """A reference without scheme or host (or one yarl refuses): scheme and host lowercased only."""
    try:
        parts = urlsplit(text)
        netloc = parts.netloc
        if netloc:
            userinfo, sep, hostport = netloc.rpartition("@")
            # Lowercase only the host: a path or user part can be case-sensitive.
            netloc = f"{userinfo}{sep}{hostport.lower()}"
        scheme = parts.scheme.lower()
        path = parts.path
        if not path and netloc and scheme in ("http", "https"):
            path = "/"
        return urlunsplit((scheme, netloc, path, _kept_query(parts.query), ""))
    except (ValueError, TypeError, UnicodeError):
        return text


def domain_of(url: str) -> str:
    """Host (IDNA form) without ``www.``, port and trailing dot, lowercased; ``""`` when there is none.

    Never raises.
    """
    if not isinstance(url, str):
        return ""
    text = url.strip()
    try:
        host = URL(text).raw_host or ""
    except (ValueError, TypeError, UnicodeError):
        try:
            host = urlsplit(text).hostname or ""
        except (ValueError, TypeError, UnicodeError):
            return ""
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _bare_domain(title: str | None) -> str | None:
    """``title`` if it looks like a bare domain (Gemini puts the site's domain there)."""
    if not title:
        return None
    t = title.strip().lower()
    if not t or " " in t or "/" in t or "." not in t or len(t) > 253:
        return None
    if not all(c.isalnum() or c in ".-" for c in t):
        return None
    return t[4:] if t.startswith("www.") else t


@dataclass(slots=True)
class _Entry:
    url: str
    domain: str
    title: str | None
    cited: bool
    order: int  # first appearance among cited (or retrieved) entries
    cite_key: float  # position in the text for cited entries (e.g. offset); lower first


class CitationBuilder:
    """Collects sources for one answer, dedupes by normalised URL, hands out positions."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._counter = 0

    def add(
        self,
        url: object,
        title: object = None,
        *,
        cited: bool,
        at: float | None = None,
        domain: str | None = None,
    ) -> None:
        """Record a source; ``at`` orders cited sources (e.g. a text offset), else call order.

        ``domain`` overrides the domain taken from the URL (Gemini's redirect links; ``""``: none known).
        Non-string URLs and empty strings are ignored: a malformed source must not sink the answer.
        """
        if not isinstance(url, str) or not url.strip():
            return
        norm = normalize_url(url)
        if not norm:
            return
        clean_title = (title.strip() or None) if isinstance(title, str) else None
        self._counter += 1
        key = float(self._counter) if at is None else float(at)
        entry = self._entries.get(norm)
        if entry is None:
            self._entries[norm] = _Entry(
                url=norm,
                domain=domain if domain is not None else domain_of(norm),
                title=clean_title,
                cited=cited,
                order=self._counter,
                cite_key=key,
            )
            return
        if clean_title and not entry.title:
            entry.title = clean_title
        if domain and not entry.domain:
            entry.domain = domain
        if cited:
            if not entry.cited:
                entry.cited = True
                entry.cite_key = key
                entry.order = self._counter
            else:
                entry.cite_key = min(entry.cite_key, key)

    def extend(self, urls: Iterable[str], *, cited: bool) -> None:
        for u in urls:
            self.add(u, cited=cited)

    def build(self) -> list[Citation]:
        """Cited first by (text position, first seen), then retrieved-only in the order seen."""
        entries = list(self._entries.values())
        cited = sorted((e for e in entries if e.cited), key=lambda e: (e.cite_key, e.order))
        retrieved = sorted((e for e in entries if not e.cited), key=lambda e: e.order)
        return [
            Citation(url=e.url, domain=e.domain, title=e.title, position=i, cited=e.cited)
            for i, e in enumerate(cited + retrieved, start=1)
        ]


def domain_from_title(title: str | None) -> str | None:
    """Public for Gemini: the bare domain its grounding chunks carry as a title."""
    return _bare_domain(title)


_MARKER = re.compile(r"\[(\d{1,4}(?:\s*,\s*\d{1,4})*)\]")


def numbered_markers(text: str) -> dict[int, int]:
    """``[n]`` / ``[n, m]`` markers in an answer (Perplexity's): number -> offset of its first appearance."""
    first: dict[int, int] = {}
    for m in _MARKER.finditer(text):
        for part in m.group(1).split(","):
            first.setdefault(int(part), m.start())
    return first
