"""The one ``ask()``: every platform's call goes through the same steps, in this order.

1. start the clock;
2. :meth:`BaseProvider.send` (the provider's hook) builds and sends the request and returns the raw
   200 body with its request id;
3. whatever that raised becomes one class of the error tree (:mod:`.errors`): the provider's
   :meth:`~BaseProvider.map_error` knows its SDK's exception types and hands statuses to
   :meth:`~BaseProvider.http_error` (one classification for all, with the Retry-After hints of
   :mod:`.retry_hints`); httpx transport errors and anything unforeseen are classified here;
4. stop the clock, decode the body as JSON;
5. :meth:`BaseProvider.parse` (the provider's hook, usually a wire-format module's ``parse``) reads
   the text, model, usage, citations, request id and metadata into an :class:`~.results.Answer`;
6. cost and the usage/price flags are computed here, the same way for every platform, and the
   :class:`~.results.ProviderResult` is built with the latency.

Per-instance state (platform name, secrets to scrub, the key, prices) lives on the instance.
Parsers do not know which platform they parse for (the Perplexity Agent API shares OpenAI's
Responses parser): they raise :class:`~.errors.MalformedResponse` / :class:`~.errors.PermanentError`
with the bare detail, and this class words it ``"<platform>: HTTP 200: <detail>"`` and scrubs it.
Clients never retry (SDK retries are off): the engine owns retries.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import httpx2

from ..config import PlatformSettings
from ..redact import scrub
from .errors import AuthError, MalformedResponse, ProviderError, TransientError, error_for_status, one_line
from .pricing import ModelPrice, compute_cost, price_for
from .ratelimit_headers import StatedLimits, from_headers
from .results import Answer, ProviderResult
from .retry_hints import parse_retry_after, retry_from_message

__all__ = ["BaseProvider", "ModelsList", "Reply"]


@dataclass(frozen=True, slots=True)
class Reply:
    """What :meth:`BaseProvider.send` got back: a 200's raw body and the provider's request id."""

    body: str | bytes
    request_id: str | None = None
    headers: Mapping[str, str] | None = None  # for the rate limits the provider states (ratelimit_headers)


@dataclass(frozen=True, slots=True)
class ModelsList:
    """What the provider's models list said: the models our key may use and the limits it states."""

    models: list[str]
    limits: StatedLimits | None = None


class BaseProvider(ABC):
    """One platform's client for a run: settings, secrets, key and prices; subclasses own one HTTP client."""

    name: str
    model: str
    states_limits = True  # the provider states its rate limits in its answers' headers (ratelimit_headers)

    def __init__(self, settings: PlatformSettings, *, secrets: Sequence[str] = ()) -> None:
        self.settings = settings
        self.name = settings.name
        self.model = settings.model
        key = settings.api_key.get() if settings.api_key is not None else ""
        # The platform's own key is always scrubbed, even if the caller forgot to pass it.
        self.secrets: tuple[str, ...] = tuple(s for s in (*secrets, key) if s and len(s) >= 4)
        if not key:
            raise AuthError(f"{self.name}: no API key configured", status=None)
        self._key = key
        self._prices: dict[tuple[str | None, bool], ModelPrice | None] = {}

    @property
    def timeout_s(self) -> float:
        return float(self.settings.timeout_s)

    @property
    def pool_size(self) -> int:
        """The in-flight limit, or its ceiling when the engine sets it from latency ("auto")."""
        return max(1, int(self.settings.max_concurrency or self.settings.max_concurrency_cap))

    def http_options(self, httpx_module: Any) -> dict[str, Any]:
        """Limits and timeout for the run's one pooled HTTP client, sized to the platform's in-flight
        limit (``httpx_module``: the httpx the SDK uses; openai and anthropic bundle their own)."""
        n = self.pool_size
        return {"limits": httpx_module.Limits(max_connections=n, max_keepalive_connections=n),
                "timeout": httpx_module.Timeout(self.timeout_s)}

    def sdk_options(self, http_client: Any, base_url: str | None) -> dict[str, Any]:
        """What every official SDK client is given: our key, no retries of its own (the engine owns
        retries), our timeout and our pooled HTTP client."""
        return {"api_key": self._key, "base_url": base_url or None, "max_retries": 0, "timeout": self.timeout_s,
                "http_client": http_client}

    # ------------------------------------------------------------------ hooks

    @abstractmethod
    async def send(self, prompt: str) -> Reply:
        """Build and send the request; return the 200's body (raise :meth:`http_error` for a status
        the transport does not raise for)."""

    @abstractmethod
    def map_error(self, exc: Exception) -> ProviderError | None:
        """The SDK's exceptions to the error tree; ``None`` for what this class classifies itself."""

    @abstractmethod
    def parse(self, body: Any, request_id: str | None) -> Answer:
        """A decoded 200 body to an :class:`Answer`; raise bare-detail Malformed/Permanent errors."""

    def stated_limits(self, headers: Mapping[str, str] | None, body: Any = None) -> StatedLimits | None:
        """The limits an answer or an error states about our key (headers; Gemini overrides: its 429 body)."""
        return from_headers(headers)

    def rate_limit_wait(self, headers: Mapping[str, str] | None, message: str, body: Any) -> float | None:
        """The wait a 429 asks for: Retry-After headers, else the provider's message text."""
        wait = parse_retry_after(headers)
        return wait if wait is not None else retry_from_message(message)

    async def aclose(self) -> None:  # pragma: no cover - overridden
        return None

    async def models(self) -> ModelsList:
        """The provider's models list through its SDK (free: no tokens; checks the key)."""
        raise NotImplementedError(f"{type(self).__name__} has no models list")

    async def list_models(self) -> ModelsList:
        """:meth:`models`, its failures classified like a call's (an :class:`AuthError` for a bad key)."""
        try:
            return await self.models()
        except ProviderError:
            raise
        except Exception as e:
            raise self.classify(e) from None

    # ------------------------------------------------------------------ the call

    async def ask(self, prompt: str) -> ProviderResult:
        """Ask once; raise only :class:`ProviderError` subclasses, never with an SDK exception chained."""
        start = time.perf_counter()
        try:
            reply = await self.send(prompt)
        except ProviderError:
            raise
        except Exception as e:
            raise self.classify(e) from None
        latency_ms = max(0, int(round((time.perf_counter() - start) * 1000)))
        result = self.result(self.decode(reply.body), latency_ms=latency_ms, request_id=reply.request_id)
        result.limits = self.stated_limits(reply.headers)
        return result

    async def complete(self, result: ProviderResult) -> ProviderResult:
        """Work on a received answer that costs no call (Gemini: its grounding redirects resolved).

        Kept out of :meth:`ask` so the engine holds the paid answer while it runs: a stop that cancels
        it must not lose the answer (:meth:`prompt_analyzer.engine.pair.PairCall._complete`).  Bounded by
        the provider; never raises for the answer's sake."""
        return result

    def classify(self, exc: Exception) -> ProviderError:
        """Any exception from :meth:`send` to one class of the tree."""
        mapped = self.map_error(exc)
        if mapped is not None:
            return mapped
        if isinstance(exc, httpx.HTTPError | httpx2.HTTPError):
            return self.transport_error(exc, timeout=isinstance(exc, httpx.TimeoutException | httpx2.TimeoutException))
        return self.unexpected(exc)

    def decode(self, body: str | bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise self.malformed(f"response body is not JSON ({type(e).__name__})") from None

    def result(
        self, body: Any, *, latency_ms: int = 0, request_id: str | None = None, batch: bool = False
    ) -> ProviderResult:
        """A decoded 200 body to the engine's result (what :meth:`ask` does after decoding).

        Contract: a :class:`ProviderResult`, or :class:`MalformedResponse` (or :class:`PermanentError`
        for an explicit refusal); whatever breaks while reading a body is a malformed response.
        ``batch``: the body came from the provider's batch API, and is priced at its batch price.
        """
        try:
            try:
                answer = self.parse(body, request_id)
            except ProviderError as e:
                raise self._worded(e) from None
            result = self._priced(answer, body, latency_ms, batch=batch)
        except ProviderError:
            raise
        except Exception as e:  # a response we cannot read is malformed, whatever broke
            raise self.malformed(f"unparseable response ({type(e).__name__}: {e})", request_id=request_id) from None
        result.metadata["web_search"] = self.settings.web_search
        return result

    # ------------------------------------------------------------------ cost

    def price(self, model_version: str | None, *, batch: bool = False) -> ModelPrice | None:
        """The price of an answer from ``model_version`` (else the configured model), with config overrides;
        ``batch``: at the batch API's price."""
        if (model_version, batch) not in self._prices:
            self._prices[model_version, batch] = price_for(self.settings, model_version, batch=batch)
        return self._prices[model_version, batch]

    def _priced(self, answer: Answer, body: Any, latency_ms: int, *, batch: bool = False) -> ProviderResult:
        """Cost and the usage/price flags, the same way on every platform."""
        u = answer.usage
        meta = answer.metadata
        if batch:
            meta["batch"] = True
        meta["searches"] = u.searches
        inp, out, total = (u.input_tokens, u.output_tokens, u.total_tokens) if u.reported else (None, None, None)
        cost = None
        if inp is None or out is None:
            meta["usage_missing"] = True
        else:
            if total is None:
                total = inp + out
            price = self.price(answer.model_version, batch=batch)
            if price is None:
                meta["price_unknown"] = True
            else:
                meta["price_model"] = price.model
                cost = compute_cost(
                    price, input_tokens=inp, output_tokens=out, searches=u.searches,
                    search_context_size=u.search_context_size,
                )
        return ProviderResult(
            text=answer.text,
            model_version=answer.model_version,
            input_tokens=inp,
            output_tokens=out,
            total_tokens=total,
            cost=cost,
            latency_ms=latency_ms,
            citations=answer.citations,
            request_id=answer.request_id,
            raw=body,
            metadata=meta,
        )

    # ------------------------------------------------------------------ errors, worded and scrubbed

    def message(self, status: int | None, detail: str) -> str:
        """``"<platform>: HTTP <status>: <detail>"`` on one line, secrets scrubbed."""
        head = f"{self.name}: HTTP {status}" if status is not None else self.name
        return scrub(one_line(f"{head}: {detail}" if detail else head), self.secrets)

    def http_error(
        self,
        status: int,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        request_id: str | None = None,
        auth: bool = False,
        permanent: bool = False,
    ) -> ProviderError:
        """A non-200 answer; a 429 gets the wait :meth:`rate_limit_wait` reads from it."""
        err = error_for_status(
            status, self.message(status, detail),
            retry_after=self.rate_limit_wait(headers, detail, body) if status == 429 else None,
            request_id=request_id, auth=auth, permanent=permanent,
        )
        err.limits = self.stated_limits(headers, body)
        return err

    def malformed(self, what: str, *, request_id: str | None = None) -> MalformedResponse:
        """A 200 we cannot use."""
        return MalformedResponse(self.message(200, what), status=200, request_id=request_id)

    def transport_error(self, exc: BaseException, *, timeout: bool) -> TransientError:
        """Timeouts, resets, refused connections: retryable, and never the exception's request details."""
        kind = "timeout" if timeout else "connection error"
        detail = str(exc) or type(exc).__name__
        return TransientError(self.message(None, f"{kind}: {type(exc).__name__}: {detail}"))

    def unexpected(self, exc: BaseException) -> ProviderError:
        """An exception nobody classified (an SDK bug, a new error type): still a ProviderError, retryable."""
        return ProviderError(self.message(None, f"unexpected {type(exc).__name__}: {exc}"))

    def _worded(self, err: ProviderError) -> ProviderError:
        """A parser's error carries its bare detail: name the platform and the 200 it came in, scrub it."""
        err.status = 200 if err.status is None else err.status
        err.message = self.message(err.status, err.message)
        err.args = (err.message,)
        return err
