"""Gemini's grounding links are redirects: resolve each once to the page it stands for.

Gemini (Developer API and Vertex) lists its sources as
``https://vertexaisearch.cloud.google.com/grounding-api-redirect/<token>`` links that answer a 302 whose
``Location`` is the real page, and that stop working within days.  Stored as they come, every Gemini
source would be that one Google host and dead a week later; the chunk's title names the site only
sometimes (a recorded answer titles one "Weather information for San Francisco, CA, US").

So, between parsing an answer and recording it, :class:`RedirectResolver` asks each redirect link once:

* one ``HEAD`` request that does not follow the redirect (the ``Location`` is all we need; the target
  page is never fetched, so no third-party site sees a request from us); a ``405`` to ``HEAD`` is asked
  once more with ``GET``, whose body is never read;
* bounded: :data:`REQUEST_TIMEOUT_S` per request, :data:`ANSWER_DEADLINE_S` for all the links of one
  answer, at most :data:`MAX_IN_FLIGHT` requests at once for the whole run; no retries;
* never failing the answer: a link that times out, errors, or answers anything but a 30x with a usable
  ``Location`` keeps the redirect as its URL, takes its domain from the title when the title is a bare
  domain (else no domain: the redirect host is never a citation's domain) and is marked unresolved.

A resolved citation's URL and domain are the target's (normalised by :mod:`.citations`); the redirect is
kept in the citation's metadata: ``{"redirect": link, "resolved": true|false}`` (plus ``"status"`` or
``"error"`` on failure).  Two links of one answer resolving to the same page become one citation (cited
if either was), and positions are renumbered in order.

A link is a redirect when its path holds ``/grounding-api-redirect/``, on any host: the simulator serves
them from its own address, and Vertex deployments have used more than one host.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .citations import domain_from_title, domain_of, normalize_url
from .results import Citation

__all__ = [
    "ANSWER_DEADLINE_S",
    "MAX_IN_FLIGHT",
    "REDIRECT_PATH",
    "REQUEST_TIMEOUT_S",
    "RedirectResolver",
    "Resolution",
    "is_redirect",
]

log = logging.getLogger(__name__)

REDIRECT_PATH = "/grounding-api-redirect/"
REQUEST_TIMEOUT_S = 3.0  # one redirect request, connect to last byte of the headers
ANSWER_DEADLINE_S = 6.0  # all the links of one answer; what is still pending then stays unresolved
MAX_IN_FLIGHT = 8  # redirect requests at once, for the whole run (they go to one Google host)
_UNWIND_S = 1.0  # how long cancelled requests may take to unwind before the answer goes on without them
_CACHE_SIZE = 4096  # a link seen again in the run (the same source in two answers) is not asked twice
_USER_AGENT = "prompt-analyzer (grounding link resolution)"


def is_redirect(url: str) -> bool:
    """Whether ``url`` is a grounding redirect link (an http(s) URL whose path holds :data:`REDIRECT_PATH`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and REDIRECT_PATH in parts.path


@dataclass(frozen=True, slots=True)
class Resolution:
    """What asking one link gave: the target, or why there is none."""

    target: str | None
    status: int | None = None
    error: str | None = None


class RedirectResolver:
    """One per provider (per run): its own small HTTP client, the in-flight bound and a cache."""

    def __init__(
        self,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
        answer_deadline_s: float = ANSWER_DEADLINE_S,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self.answer_deadline_s = answer_deadline_s
        self._http = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(request_timeout_s),
            limits=httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight),
            headers={"user-agent": _USER_AGENT},
        )
        self._slots = asyncio.Semaphore(max_in_flight)
        self._cache: OrderedDict[str, Resolution] = OrderedDict()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def resolve(self, citations: Sequence[Citation]) -> list[Citation]:
        """``citations`` with every redirect link resolved or marked unresolved; never raises (but for
        cancellation) and returns within :attr:`answer_deadline_s` (plus scheduling)."""
        links = sorted({c.url for c in citations if is_redirect(c.url)})
        if not links:
            return list(citations)
        found = await self._resolve_all(links)
        out = [_applied(c, found.get(c.url)) if is_redirect(c.url) else c for c in citations]
        return _merged(out)

    async def _resolve_all(self, links: list[str]) -> dict[str, Resolution]:
        tasks = {link: asyncio.ensure_future(self._one(link)) for link in links}
        done, pending = await asyncio.wait(tasks.values(), timeout=self.answer_deadline_s)
        for t in pending:
            t.cancel()
        if pending:  # let the cancelled requests release their connections (bounded: never held by them)
            await asyncio.wait(pending, timeout=_UNWIND_S)
        out: dict[str, Resolution] = {}
        for link, t in tasks.items():
            if t in done and not t.cancelled() and t.exception() is None:
                out[link] = t.result()
            else:
                out[link] = Resolution(None, error="deadline")
        return out

    async def _one(self, link: str) -> Resolution:
        cached = self._cache.get(link)
        if cached is not None:
            self._cache.move_to_end(link)
            return cached
        async with self._slots:
            res = await self._ask(link)
        if res.target is not None:  # failures are not cached: they may be the network, not the link
            self._cache[link] = res
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return res

    async def _ask(self, link: str) -> Resolution:
        try:
            resp = await self._http.head(link)
            if resp.status_code == 405:
                async with self._http.stream("GET", link) as resp:  # headers only: the body is never read
                    return _location(link, resp)
            return _location(link, resp)
        except httpx.HTTPError as e:
            return Resolution(None, error=type(e).__name__)
        except Exception as e:  # whatever breaks here (vcrpy refusing a request...), the answer is kept
            log.debug("redirect resolution failed: %s", e)
            return Resolution(None, error=type(e).__name__)


def _location(link: str, resp: httpx.Response) -> Resolution:
    """The target a response names: a 30x's ``Location`` (made absolute), if it is an http(s) URL that
    is not itself a grounding link."""
    if resp.status_code not in (301, 302, 303, 307, 308):
        return Resolution(None, status=resp.status_code)
    loc = resp.headers.get("location", "").strip()
    if not loc:
        return Resolution(None, status=resp.status_code, error="no Location")
    target = urljoin(link, loc)
    if urlsplit(target).scheme not in ("http", "https") or not domain_of(target) or is_redirect(target):
        return Resolution(None, status=resp.status_code, error="unusable Location")
    return Resolution(target, status=resp.status_code)


def _applied(c: Citation, res: Resolution | None) -> Citation:
    meta: dict[str, Any] = {**(c.metadata or {}), "redirect": c.url}
    if res is not None and res.target is not None:
        url = normalize_url(res.target)
        meta["resolved"] = True
        return replace(c, url=url, domain=domain_of(url), site="", metadata=meta)
    meta["resolved"] = False
    if res is not None and res.status is not None:
        meta["status"] = res.status
    if res is not None and res.error:
        meta["error"] = res.error
    domain = domain_from_title(c.title) or ""
    return replace(c, domain=domain, site="", metadata=meta)


def _merged(citations: list[Citation]) -> list[Citation]:
    """One citation per URL (first position wins, cited if any was), positions renumbered from 1."""
    by_url: dict[str, Citation] = {}
    for c in sorted(citations, key=lambda c: c.position):
        first = by_url.get(c.url)
        if first is None:
            by_url[c.url] = c
        elif c.cited and not first.cited:
            by_url[c.url] = replace(first, cited=True)
    ordered = sorted(by_url.values(), key=lambda c: (not c.cited, c.position))
    return [replace(c, position=i) for i, c in enumerate(ordered, start=1)]
