"""Rendering: a rich live display at a terminal, plain timestamped lines elsewhere, JSON on request.

Under cron, CI or a pipe there are no control codes: a start line, a progress line at most every
10% or every minute, and a summary.  ``--json`` keeps stdout for the one JSON object; everything
else goes to stderr.
"""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .db import BatchRow
from .engine.figures import BatchReport
from .engine.progress import Progress

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _plain(value: Any) -> str:
    """Provider- or user-supplied text for a rich console: control characters shown as escapes (\\x1b).

    Such text always goes into :class:`Text` objects (or ``markup=False``), never into a markup
    string: an answer or a batch key holding ``[/x]`` would crash the renderer, ``[bold]`` would vanish.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(value))


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _eta(progress: Progress) -> float | None:
    elapsed = time.monotonic() - progress.started
    done_now = sum(p.success + p.error for p in progress.platforms.values())
    left = progress.total - progress.finished
    if done_now == 0 or elapsed <= 0:
        return None
    return left / (done_now / elapsed)


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class Reporter:
    """Plain lines; the base for the live display."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self._last_pct = -1
        self._last_time = 0.0

    def line(self, text: str) -> None:
        print(f"{_stamp()} {text}", file=self.out, flush=True)

    def start(self, batch: BatchRow, progress: Progress, *, resumed: bool) -> None:
        verb = "resuming" if resumed else "starting"
        plats = ", ".join(f"{n} {p.total - p.done_before}" for n, p in progress.platforms.items())
        self.line(f"{verb} batch {batch.idempotency_key} ({batch.id}): {batch.total_jobs} prompts; "
                  f"calls to make: {plats or 'none'}")
        self._last_time = time.monotonic()

    def tick(self, progress: Progress) -> None:
        total = progress.total or 1
        pct = int(100 * progress.finished / total) // 10 * 10
        now = time.monotonic()
        if pct > self._last_pct or now - self._last_time >= 60:
            if self._last_pct >= 0 or pct > 0:
                self.line(self._progress_text(progress))
            self._last_pct = max(pct, self._last_pct)
            self._last_time = now

    def _progress_text(self, progress: Progress) -> str:
        parts = []
        for name, p in progress.platforms.items():
            parts.append(f"{name} {p.finished}/{p.total} ok={p.done_before + p.success} err={p.error}")
        pct = 100 * progress.finished / (progress.total or 1)
        return f"progress {pct:.0f}%: " + "; ".join(parts) + f"; eta {_fmt_s(_eta(progress))}"

    def stop(self) -> None:
        pass

    def summary(self, report: BatchReport) -> None:
        self.line(
            f"batch {report['key']} {report['status']}: {report['completed_jobs']}/{report['total_jobs']} prompts "
            f"completed, {report['failed_jobs']} failed, cost ${report['cost_usd']:.4f}"
            + (f", {report['duration_s']:.1f}s" if "duration_s" in report else "")
        )
        for name, p in report["platforms"].items():
            extra = ""
            if "run" in p:
                extra = f" 429s={p['run']['rate_limited']} retries={p['run']['retries']}"
                if p["run"]["circuit_open"]:
                    extra += f" circuit-open=({p['run']['circuit_open'][:120]})"
            self.line(
                f"  {name}: success={p['success']} error={p['error']} pending={p['pending'] + p['processing']} "
                f"tokens={p['tokens']} cost=${p['cost_usd']:.4f} p50={_ms(p['p50_ms'])} p95={_ms(p['p95_ms'])}{extra}"
            )
            if p.get("limits"):
                self.line(f"    limits: {limits_text(p['limits'])}")
            for e in p["top_errors"]:
                self.line(f"    {e['count']} x {e['class']}: {e['message']}")


def limits_text(limits: dict[str, Any]) -> str:
    """The limits a platform ran under, on one line: ``1,200 rpm (stated), 80,000 input tpm (stated), ...``."""
    parts = []
    if "rpm" in limits:
        parts.append(f"{limits['rpm']:,.0f} rpm ({limits.get('rpm_source', '?')})")
    for key, label in (("tpm", "tpm"), ("input_tpm", "input tpm"), ("output_tpm", "output tpm")):
        if key in limits:
            parts.append(f"{limits[key]:,.0f} {label} ({limits.get('tpm_source', '?')})")
    if "rpd" in limits:
        parts.append(f"{limits['rpd']:,} rpd")
    if "in_flight_limit" in limits:
        how = "auto" if limits.get("max_concurrency") == "auto" else "fixed"
        parts.append(f"in flight <= {limits['in_flight_limit']} ({how})")
    return ", ".join(parts) or "-"


def _ms(v: Any) -> str:
    return "-" if v is None else f"{float(v) / 1000:.2f}s"


class LiveReporter(Reporter):
    """The rich live display at a terminal, and a summary table at the end."""

    def __init__(self, console: Console) -> None:
        super().__init__(console.file)
        self.console = console
        self.live: Live | None = None
        self.batch: BatchRow | None = None

    def start(self, batch: BatchRow, progress: Progress, *, resumed: bool) -> None:
        self.batch = batch
        verb = "Resuming" if resumed else "Starting"
        self.console.print(Text.assemble(
            f"{verb} batch ", (_plain(batch.idempotency_key), "bold"), f" ({batch.total_jobs} prompts)"))
        self.live = Live(self._render(progress), console=self.console, refresh_per_second=4, transient=False)
        self.live.start()

    def tick(self, progress: Progress) -> None:
        if self.live is not None:
            self.live.update(self._render(progress))

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _render(self, progress: Progress) -> Any:
        elapsed = max(time.monotonic() - progress.started, 1e-6)
        t = Table(box=None, pad_edge=False)
        for col in ("platform", "done", "failed", "in flight", "rate/min", "429s", "ETA", "cost"):
            t.add_column(col, justify="left" if col == "platform" else "right")
        for name, p in progress.platforms.items():
            rate = (p.success + p.error) / elapsed * 60
            left = p.total - p.finished
            eta = left / (rate / 60) if rate > 0 else None
            label = Text(_plain(name))
            if p.breaker:
                label.append(" (circuit open)", style="red")
            t.add_row(
                label, f"{p.done_before + p.success}/{p.total}", str(p.error), str(p.in_flight),
                f"{rate:.0f}", str(p.rate_limited), _fmt_s(eta if left else 0), f"${p.cost:.4f}",
            )
        pct = 100 * progress.finished / (progress.total or 1)
        head = Text(f"{pct:5.1f}% of {progress.total} calls  elapsed {_fmt_s(elapsed)}  ETA {_fmt_s(_eta(progress))}")
        if progress.stopping:
            head.append(f"  stopping ({progress.stopping}): letting calls in flight finish", style="yellow")
        return Group(head, t)

    def summary(self, report: BatchReport) -> None:
        t = Table(title=Text(f"batch {_plain(report['key'])}: {_plain(report['status'])}"))
        for col in ("platform", "success", "error", "pending", "tokens", "cost", "p50", "p95", "429s"):
            t.add_column(col, justify="left" if col == "platform" else "right")
        for name, p in report["platforms"].items():
            t.add_row(Text(_plain(name)), str(p["success"]), str(p["error"]), str(p["pending"] + p["processing"]),
                      str(p["tokens"]), f"${p['cost_usd']:.4f}", _ms(p["p50_ms"]), _ms(p["p95_ms"]),
                      str(p.get("run", {}).get("rate_limited", "-")))
        self.console.print(t)
        dur = f" in {report['duration_s']:.1f}s" if "duration_s" in report else ""
        self.console.print(
            f"{report['completed_jobs']}/{report['total_jobs']} prompts completed, {report['failed_jobs']} failed, "
            f"total cost ${report['cost_usd']:.4f}{dur}"
        )
        for name, p in report["platforms"].items():
            if p.get("limits"):
                self.console.print(Text.assemble("  ", (_plain(name), "bold"), f" limits: {limits_text(p['limits'])}"))
            for e in p["top_errors"]:
                self.console.print(Text.assemble(
                    "  ", (_plain(name), "red"), f": {e['count']} x {_plain(e['class'])}: {_plain(e['message'])}"))


def make_reporter(*, json_mode: bool, quiet: bool = False) -> Reporter:
    out = sys.stderr if json_mode else sys.stdout
    if quiet:
        return QuietReporter(out)
    if out.isatty():
        return LiveReporter(Console(file=out))
    return Reporter(out)


class QuietReporter(Reporter):
    def start(self, batch: BatchRow, progress: Progress, *, resumed: bool) -> None:
        pass

    def tick(self, progress: Progress) -> None:
        pass


def print_json(obj: Any) -> None:
    print(json.dumps(obj, default=str, ensure_ascii=False), flush=True)


def render_prompt_result(console: Console, rows: list[dict[str, Any]]) -> None:
    """`analyze prompt`: each platform's status, tokens, cost, latency, answer start and sources."""
    for r in rows:
        status = r["status"]
        style = {"success": "green", "error": "red"}.get(status, "yellow")
        head = Text.assemble((_plain(r["platform"]), "bold"), " ", (_plain(status), style))
        if status == "success":
            head.append(f"  {_plain(r['model_version'] or '')}  tokens {r['tokens_used']}  "
                        f"cost ${float(r['cost'] or 0):.5f}  {(r['execution_time_ms'] or 0) / 1000:.2f}s")
        console.print(head)
        if status == "success":
            text = (r["response_text"] or "").strip().replace("\n", " ")
            console.print(Text("  " + _plain(text[:300] + ("..." if len(text) > 300 else ""))))
            for c in r["citations"][:10]:
                mark = "cited" if c["cited"] else "retrieved"
                console.print(Text(f"  [{c['position']}] {_plain(c['domain'])} ({mark}) {_plain(c['url'])}"))
        elif r.get("error_message"):
            console.print(Text(f"  {_plain(r['error_class'] or 'error')}: {_plain(r['error_message'])}"))
