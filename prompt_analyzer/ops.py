"""Operations hooks of an unattended run: Prometheus metrics, health pings and a completion webhook.

Everything here serves monitoring, never the batch itself: the network helpers never raise (they
return an error string for the caller to log) and give up within a fixed time budget, so a dead
monitoring endpoint cannot fail or stall a nightly run. ``render_metrics`` is pure so the metrics
can be checked without a run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.parser import text_string_to_metric_families

from . import __version__
from .backoff import HTTP_FIRST_S, HTTP_MAX_S, Backoff
from .providers.retry_hints import parse_retry_after
from .statuses import FINISHED, BatchStatus

PREFIX = "prompt_analyzer_"
STATUSES = tuple(s.value for s in BatchStatus)  # the batch_status gauge's labels
# A dead endpoint may delay the run by at most this much per call of ping/notify/push_metrics.
TOTAL_BUDGET_S = 30.0
_USER_AGENT = f"prompt-analyzer/{__version__}"

# ------------------------------------------------------------------------------------------ metrics


_Family = GaugeMetricFamily | CounterMetricFamily


class _Families:
    """The families of one metrics text, as a collector for a :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.families: list[_Family] = []

    def family(self, name: str, kind: Literal["gauge", "counter"], help_text: str, *labels: str) -> _Family:
        make = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
        fam = make(PREFIX + name, help_text, labels=labels)
        self.families.append(fam)
        return fam

    def collect(self) -> list[Metric]:
        return [f for f in self.families if f.samples]  # a family without samples is left out


def _add(family: _Family, value: Any, *labels: str) -> None:
    """One sample; ``None`` (a figure the report does not have) adds none."""
    if value is not None:
        family.add_metric(list(labels), float(value))


def previous_value(previous: str | None, name: str) -> float | None:
    """The value of the unlabelled sample ``name`` in an earlier metrics text, or None.

    Tolerant on purpose: a missing, empty or garbled file simply has no value to carry over. Each
    line is read on its own by prometheus_client's parser, so a damaged line elsewhere does not hide
    the value.
    """
    for line in (previous or "").splitlines():
        if not line.startswith(name):
            continue
        try:
            families = list(text_string_to_metric_families(line + "\n"))
        except ValueError:
            continue
        for sample in (s for f in families for s in f.samples):
            if sample.name == name and not sample.labels:
                return sample.value if math.isfinite(sample.value) else None
    return None


def render_metrics(
    report: Mapping[str, Any],
    *,
    now: float,
    duration_s: float | None,
    previous: str | None = None,
    exit_code: int | None = None,
) -> str:
    """The run's figures in Prometheus text format 0.0.4 (node_exporter textfile collector, Pushgateway).

    ``report`` is the ``--json`` summary; an empty mapping is accepted for a run that failed before a
    batch existed (exit 2/75), so its timestamp and exit code are still exported. The success
    timestamps are carried over from ``previous`` (the file being replaced) when this run did not
    succeed, so "no success in 26 h" can be alerted on. Calls, tokens and cost are the batch's figures
    (a resumed batch counts earlier runs too); 429s and retries are this process's.
    """
    status = report.get("status")
    out = _Families()
    fam = out.family

    _add(fam("last_run_timestamp_seconds", "gauge", "When the last run ended (Unix time)."), now)
    if duration_s is None:
        duration_s = report.get("duration_s")
    _add(fam("last_run_duration_seconds", "gauge", "Wall time of the last run."), duration_s)
    _add(fam("exit_code", "gauge", "Exit code of the last run (0 ok, 1 failed calls, 2 usage, 75 temporary, "
             "130/143 interrupted)."), exit_code)

    for name, help_text, statuses in (
        ("last_success_timestamp_seconds", "When a run last ended with status completed (every call succeeded).",
         ("completed",)),
        ("last_finished_timestamp_seconds",
         "When a run last ended with status completed or completed_with_errors (no call left to make).",
         FINISHED),
    ):
        _add(fam(name, "gauge", help_text), now if status in statuses else previous_value(previous, PREFIX + name))

    if status is not None:
        bs = fam("batch_status", "gauge", "Status of the last run's batch: 1 for the current status, 0 for the others.",
                 "status")
        for s in STATUSES:
            _add(bs, 1 if s == status else 0, s)
        if status not in STATUSES:
            _add(bs, 1, str(status))

    jobs = fam("jobs", "gauge", "Prompts (jobs) of the last batch by state.", "state")
    for state, key in (("total", "total_jobs"), ("completed", "completed_jobs"), ("failed", "failed_jobs")):
        _add(jobs, report.get(key), state)

    platforms: Mapping[str, Any] = report.get("platforms") or {}
    calls = fam("calls_total", "counter", "Calls of the last batch by platform and final status.", "platform", "status")
    unfinished = fam("calls_unfinished", "gauge", "Calls of the last batch not yet ended (pending or processing).",
                     "platform")
    tokens = fam("tokens_total", "counter", "Tokens billed for the last batch's successful calls.", "platform")
    cost = fam("cost_usd_total", "counter", "Cost in USD of the last batch's successful calls.", "platform")
    requests = fam("requests_total", "counter", "Provider requests made during the last run, retries included.",
                   "platform")
    limited = fam("rate_limited_total", "counter", "HTTP 429 answers received during the last run.", "platform")
    retries = fam("retries_total", "counter", "Retried calls during the last run.", "platform")
    circuit = fam("circuit_open", "gauge", "1 when the last run stopped calling a platform after consecutive failures.",
                  "platform")
    p50 = fam("latency_p50_seconds", "gauge", "Median latency of the last batch's successful calls.", "platform")
    p95 = fam("latency_p95_seconds", "gauge", "95th percentile latency of the last batch's successful calls.",
              "platform")
    for name, p in platforms.items():
        name = str(name)
        _add(calls, p.get("success", 0), name, "success")
        _add(calls, p.get("error", 0), name, "error")
        _add(unfinished, int(p.get("pending", 0) or 0) + int(p.get("processing", 0) or 0), name)
        _add(tokens, p.get("tokens"), name)
        _add(cost, p.get("cost_usd"), name)
        if p.get("p50_ms") is not None:
            _add(p50, round(float(p["p50_ms"]) / 1000, 6), name)
        if p.get("p95_ms") is not None:
            _add(p95, round(float(p["p95_ms"]) / 1000, 6), name)
        run = p.get("run")
        if run:  # only the process that ran the batch knows these; `status` reports lack them
            _add(requests, run.get("calls"), name)
            _add(limited, run.get("rate_limited"), name)
            _add(retries, run.get("retries"), name)
            _add(circuit, 1 if run.get("circuit_open") else 0, name)

    registry = CollectorRegistry()
    registry.register(out)
    return generate_latest(registry).decode("utf-8")


def read_previous(path: str | os.PathLike[str]) -> str | None:
    """The current content of a metrics file, or None when it is missing or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def write_metrics_file(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` atomically: node_exporter reads the file at any moment and must never see half.

    The temporary file lives in the same directory (``os.replace`` is atomic only within one file
    system) and does not end in ``.prom``, so the textfile collector ignores it. Raises OSError; the
    caller logs it and carries on.
    """
    target = Path(path)
    data = text.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o644)  # mkstemp makes 0600; the collector runs as another user
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable; best effort
        dfd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ------------------------------------------------------------------------------------------ HTTP

def _where(url: str) -> str:
    """The URL without credentials, path or query: ping URLs carry a secret check id in the path."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<invalid URL>"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "<invalid URL>"


def _join(url: str, *segments: str) -> str:
    """``url`` with path segments appended before any query string (``?rid=...``, ``?create=1``)."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/") + "".join("/" + s for s in segments)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _snippet(resp: httpx.Response) -> str:
    try:
        text = " ".join(resp.text.split())[:200]
    except Exception:  # undecodable body: the status says enough
        return ""
    return f": {text}" if text else ""


async def _send(
    what: str,
    method: str,
    url: str,
    *,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    attempt_timeout: float,
    attempts: int,
    budget_s: float,
    follow_redirects: bool = False,
) -> str | None:
    """One request, retried on connection errors, timeouts, 429 and 5xx, within ``budget_s`` in all.

    Returns None on a 2xx answer, else a one-line error naming the host (never the path, which may
    hold a secret). Never raises, except on cancellation.
    """
    backoff = Backoff(HTTP_FIRST_S, HTTP_MAX_S, within_s=budget_s, jitter=False)
    where = _where(url)
    error = f"{what} to {where}: no attempt made"
    tries = 0
    try:
        async with httpx.AsyncClient(headers={"User-Agent": _USER_AGENT}, follow_redirects=follow_redirects) as client:
            while True:
                remaining = backoff.remaining() or 0.0
                if remaining <= 0.05:
                    error += " (time budget exhausted)"
                    break
                limit = min(attempt_timeout, remaining)
                tries += 1
                hint: float | None = None
                try:
                    async with asyncio.timeout(limit):  # httpx's timeouts are per phase, not per request
                        resp = await client.request(method, url, content=content, headers=headers, timeout=limit)
                except (TimeoutError, httpx.TimeoutException):
                    error = f"{what} to {where}: timed out after {limit:.1f}s"
                except httpx.UnsupportedProtocol as e:
                    return f"{what} to {where}: {e}"
                except httpx.TransportError as e:
                    error = f"{what} to {where}: {type(e).__name__}: {e}"
                else:
                    if resp.is_success:
                        return None
                    error = f"{what} to {where}: HTTP {resp.status_code}{_snippet(resp)}"
                    if resp.status_code != 429 and resp.status_code < 500:
                        return error  # the request itself is wrong: retrying cannot help
                    hint = parse_retry_after(resp.headers)
                if tries >= max(1, attempts):
                    break
                delay = backoff.next(hint=None if hint is None else min(hint, HTTP_MAX_S))
                if delay is None or delay <= 0:
                    error += " (time budget exhausted)"
                    break
                await asyncio.sleep(delay)
    except Exception as e:  # bad URL and the like: monitoring must never break the run
        return f"{what} to {where}: {type(e).__name__}: {e}"
    return f"{error} ({tries} attempt{'s' if tries != 1 else ''})"


async def push_metrics(
    url: str,
    text: str,
    job: str = "prompt_analyzer",
    timeout: float = 10,  # noqa: ASYNC109 - per attempt; the whole call is bounded by budget_s
    *,
    attempts: int = 3,
    budget_s: float = TOTAL_BUDGET_S,
) -> str | None:
    """Push the metrics text to a Prometheus Pushgateway; returns an error string or None.

    POST, not PUT: POST replaces only the metric families pushed, so a failed run (which carries no
    ``last_success`` sample when there is no previous metrics file) leaves the last success timestamp
    in the gateway instead of deleting it.
    """
    if "/" in job or not job:
        segment = "job@base64/" + (base64.urlsafe_b64encode(job.encode()).decode() or "=")
    else:
        segment = "job/" + quote(job, safe="")
    target = _join(url, "metrics", *segment.split("/"))
    return await _send(
        "pushgateway", "POST", target, content=text.encode("utf-8"),
        headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4}, attempt_timeout=timeout, attempts=attempts,
        budget_s=budget_s,
    )


async def ping(
    url: str,
    what: Literal["start"] | int,
    timeout: float = 10,  # noqa: ASYNC109 - per attempt; the whole call is bounded by budget_s
    *,
    body: str | None = None,
    run_id: str | None = None,
    budget_s: float = TOTAL_BUDGET_S,
) -> str | None:
    """healthchecks.io-style ping: ``URL/start`` when a run starts, ``URL/<exit code>`` when it ends.

    At most 3 tries. ``body`` (e.g. the summary lines) is POSTed and shown in the check's log;
    ``run_id`` (a UUID) pairs a start with its end so healthchecks measures the run's duration.
    Returns an error string for the log, or None; never raises.
    """
    if what != "start" and not (isinstance(what, int) and 0 <= what <= 255):
        return f"ping: invalid status {what!r} (expected 'start' or an exit code 0-255)"
    target = _join(url, str(what))
    if run_id:
        sep = "&" if urlsplit(target).query else "?"
        target += f"{sep}rid={quote(run_id, safe='')}"
    method = "GET" if body is None else "POST"
    content = None if body is None else body.encode("utf-8")[:100_000]  # healthchecks keeps 100 kB at most
    return await _send(f"ping {what}", method, target, content=content, attempt_timeout=timeout, attempts=3,
                       budget_s=budget_s, follow_redirects=True)


async def notify(
    url: str,
    report: Mapping[str, Any],
    timeout: float = 10,  # noqa: ASYNC109 - per attempt; the whole call is bounded by budget_s
    attempts: int = 3,
    *,
    budget_s: float = TOTAL_BUDGET_S,
) -> str | None:
    """POST the ``--json`` summary to a webhook when a batch ends; returns an error string or None.

    Retried with backoff on connection errors, timeouts, 429 and 5xx. Every attempt carries the same
    ``Idempotency-Key`` so a receiver can drop a duplicate when an answer was lost after delivery.
    """
    try:
        payload = json.dumps(report, default=str, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        return f"notify: the report is not serialisable: {e}"
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    return await _send("notify", "POST", url, content=payload, headers=headers, attempt_timeout=timeout,
                       attempts=attempts, budget_s=budget_s)

