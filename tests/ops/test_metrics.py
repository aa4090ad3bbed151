"""Rendering the Prometheus textfile and replacing it atomically."""

from __future__ import annotations

import math
import os
import re
import stat
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from prompt_analyzer.ops import STATUSES, read_previous, render_metrics, write_metrics_file

P = "prompt_analyzer_"
NOW = 1_764_468_000.25


def parse(text: str) -> dict[str, list[Sample]]:
    """Samples by family name, read by prometheus_client's parser, after the checks that parser leaves out
    and node_exporter's textfile collector makes: a final newline, one HELP and one TYPE line per family,
    each family's samples together, no series twice."""
    assert text.endswith("\n")
    fams: dict[str, list[Sample]] = {}
    for fam in text_string_to_metric_families(text):
        assert fam.type in ("gauge", "counter"), fam
        name = fam.name + "_total" if fam.type == "counter" else fam.name  # the parser drops a counter's _total
        assert name not in fams, f"{name}: samples not together"
        assert all(s.name == name for s in fam.samples), fam
        series = Counter(tuple(sorted(s.labels.items())) for s in fam.samples)
        assert max(series.values()) == 1, f"{name}: a series twice"
        fams[name] = fam.samples
    for kind in ("HELP", "TYPE"):
        assert Counter(re.findall(rf"^# {kind} (\S+) ", text, re.M)) == Counter(list(fams)), kind
    return fams


def kind(text: str, name: str) -> str:
    m = re.search(rf"^# TYPE {name} (\w+)$", text, re.M)
    assert m, name
    return m.group(1)


def value(fams: dict[str, list[Sample]], name: str, **labels: str) -> float:
    [v] = [s.value for s in fams[name] if s.labels == labels]
    assert not math.isnan(v)
    return v


def platform(success: int, error: int, *, run: bool = True, **over: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "total": success + error, "success": success, "error": error, "processing": 0, "pending": 0,
        "tokens": 1000 * success, "cost_usd": 0.0125 * success, "p50_ms": 1500, "p95_ms": 4200.5,
        "attempts": success + error, "top_errors": [],
    }
    if run:
        p["run"] = {"calls": success + error, "rate_limited": 7, "retries": 3, "circuit_open": None}
    p.update(over)
    return p


def report(status: str = "completed", **over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "batch_id": "0b7a6c9e-0000-4000-8000-000000000001", "key": "daily:2026-11-30", "trigger": "schedule",
        "status": status, "total_jobs": 100, "completed_jobs": 98, "failed_jobs": 2, "cost_usd": 1.5,
        "duration_s": 812.4,
        "platforms": {"openai": platform(100, 0), "claude": platform(90, 10), "perplexity": platform(0, 0)},
    }
    r.update(over)
    return r


def test_renders_every_metric_with_help_type_and_values() -> None:
    text = render_metrics(report(), now=NOW, duration_s=812.5, exit_code=0)
    fams = parse(text)
    for name, kind_ in [
        ("last_run_timestamp_seconds", "gauge"), ("last_run_duration_seconds", "gauge"),
        ("last_success_timestamp_seconds", "gauge"), ("last_finished_timestamp_seconds", "gauge"),
        ("batch_status", "gauge"), ("calls_total", "counter"), ("tokens_total", "counter"),
        ("cost_usd_total", "counter"), ("rate_limited_total", "counter"), ("retries_total", "counter"),
        ("latency_p50_seconds", "gauge"), ("latency_p95_seconds", "gauge"), ("jobs", "gauge"),
        ("exit_code", "gauge"), ("calls_unfinished", "gauge"), ("circuit_open", "gauge"), ("requests_total", "counter"),
    ]:
        assert kind(text, P + name) == kind_, name
        assert re.search(rf"^# HELP {P + name} \S", text, re.M), name
    assert all(n.startswith(P) for n in fams)
    assert value(fams, P + "last_run_timestamp_seconds") == NOW
    assert value(fams, P + "last_run_duration_seconds") == 812.5
    assert value(fams, P + "last_success_timestamp_seconds") == NOW
    assert value(fams, P + "exit_code") == 0
    assert value(fams, P + "calls_total", platform="claude", status="success") == 90
    assert value(fams, P + "calls_total", platform="claude", status="error") == 10
    assert value(fams, P + "calls_total", platform="perplexity", status="error") == 0
    assert value(fams, P + "tokens_total", platform="openai") == 100_000
    assert value(fams, P + "cost_usd_total", platform="openai") == pytest.approx(1.25)
    assert value(fams, P + "rate_limited_total", platform="claude") == 7
    assert value(fams, P + "retries_total", platform="claude") == 3
    assert value(fams, P + "requests_total", platform="claude") == 100
    assert value(fams, P + "circuit_open", platform="claude") == 0
    assert value(fams, P + "latency_p50_seconds", platform="openai") == 1.5
    assert value(fams, P + "latency_p95_seconds", platform="openai") == pytest.approx(4.2005)
    assert value(fams, P + "jobs", state="total") == 100
    assert value(fams, P + "jobs", state="completed") == 98
    assert value(fams, P + "jobs", state="failed") == 2
    assert len(fams[P + "calls_total"]) == 6


@pytest.mark.parametrize("status", STATUSES)
def test_batch_status_is_one_hot(status: str) -> None:
    fams = parse(render_metrics(report(status), now=NOW, duration_s=None))
    samples = fams[P + "batch_status"]
    assert {s.labels["status"]: s.value for s in samples} == {s: (1 if s == status else 0) for s in STATUSES}


def test_duration_falls_back_to_the_report_and_exit_code_is_optional() -> None:
    fams = parse(render_metrics(report(), now=NOW, duration_s=None))
    assert value(fams, P + "last_run_duration_seconds") == 812.4
    assert P + "exit_code" not in fams


def test_status_reports_without_run_figures_omit_them_rather_than_say_zero() -> None:
    r = report(platforms={"gemini": platform(5, 1, run=False, p50_ms=None, p95_ms=None)})
    fams = parse(render_metrics(r, now=NOW, duration_s=1.0))
    for name in ("rate_limited_total", "retries_total", "requests_total", "circuit_open",
                 "latency_p50_seconds", "latency_p95_seconds"):
        assert P + name not in fams
    assert value(fams, P + "calls_total", platform="gemini", status="error") == 1


def test_circuit_open_and_unfinished_calls() -> None:
    p = platform(3, 5, pending=4, processing=1)
    p["run"]["circuit_open"] = "5 consecutive failures: HTTP 503"
    fams = parse(render_metrics(report("interrupted", platforms={"claude": p}), now=NOW, duration_s=1))
    assert value(fams, P + "circuit_open", platform="claude") == 1
    assert value(fams, P + "calls_unfinished", platform="claude") == 5


def test_label_values_are_escaped() -> None:
    odd = 'we"ird\\name\nline2'
    fams = parse(render_metrics(report(platforms={odd: platform(1, 2)}), now=NOW, duration_s=1))
    assert value(fams, P + "calls_total", platform=odd, status="error") == 2
    assert value(fams, P + "tokens_total", platform=odd) == 1000


def test_the_checks_catch_what_the_textfile_collector_refuses() -> None:
    """The parser used here is lenient; ``parse`` adds the checks that make a file unreadable for node_exporter."""
    text = render_metrics(report(), now=NOW, duration_s=1)
    for bad in (
        text.rstrip("\n"),  # no final newline
        text + 'prompt_analyzer_jobs{state="total"} 5\n',  # a family split in two, a series twice
        text + "# TYPE y gauge\ny 1\n",  # no HELP
        text + "y 1\n",  # no TYPE
    ):
        with pytest.raises(AssertionError):
            parse(bad)


def test_values_round_trip_exactly() -> None:
    odd = {"tokens": 2**52 + 1, "cost_usd": 0.1 + 0.2, "p50_ms": 0.001}
    fams = parse(render_metrics(report(platforms={"x": platform(1, 0, **odd)}), now=NOW, duration_s=1e-9))
    assert value(fams, P + "tokens_total", platform="x") == 2**52 + 1
    assert value(fams, P + "cost_usd_total", platform="x") == 0.1 + 0.2
    assert value(fams, P + "latency_p50_seconds", platform="x") == 0.000001
    assert value(fams, P + "last_run_duration_seconds") == 1e-9
    assert value(fams, P + "last_run_timestamp_seconds") == NOW


# ---------------------------------------------------------------------------------- carry-over

@pytest.mark.parametrize("status", ["completed_with_errors", "interrupted", "failed", "running"])
def test_last_success_is_carried_over_from_the_previous_file(status: str) -> None:
    first = render_metrics(report("completed"), now=1000.5, duration_s=1, exit_code=0)
    second = render_metrics(report(status), now=2000.0, duration_s=1, previous=first, exit_code=1)
    third = render_metrics(report(status), now=3000.0, duration_s=1, previous=second, exit_code=1)
    for text in (second, third):
        fams = parse(text)
        assert value(fams, P + "last_success_timestamp_seconds") == 1000.5
    assert value(parse(third), P + "last_run_timestamp_seconds") == 3000.0
    finished = value(parse(third), P + "last_finished_timestamp_seconds")
    assert finished == (3000.0 if status == "completed_with_errors" else 1000.5)


def test_a_new_success_replaces_the_carried_value() -> None:
    first = render_metrics(report("failed"), now=1000, duration_s=1,
                           previous="prompt_analyzer_last_success_timestamp_seconds 500\n")
    assert value(parse(first), P + "last_success_timestamp_seconds") == 500
    second = render_metrics(report("completed"), now=2000, duration_s=1, previous=first)
    assert value(parse(second), P + "last_success_timestamp_seconds") == 2000


def test_a_damaged_line_elsewhere_does_not_hide_the_carried_value() -> None:
    previous = render_metrics(report("completed"), now=1000.5, duration_s=1)
    lines = previous.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith(P + "last_success"))
    damaged = "".join(lines[:at] + ["garbage {{{\n", "\x00\n"] + lines[at:at + 1] + ['x{a="b" 1\n'] + lines[at + 1:])
    fams = parse(render_metrics(report("failed"), now=2000, duration_s=1, previous=damaged))
    assert value(fams, P + "last_success_timestamp_seconds") == 1000.5


@pytest.mark.parametrize("previous", [None, "", "garbage\n\x00", "prompt_analyzer_last_success_timestamp_seconds NaN\n",
                                      'prompt_analyzer_last_success_timestamp_seconds{x="1"} 5\n'])
def test_no_previous_success_means_no_sample(previous: str | None) -> None:
    fams = parse(render_metrics(report("failed"), now=NOW, duration_s=1, previous=previous))
    assert P + "last_success_timestamp_seconds" not in fams
    assert P + "last_finished_timestamp_seconds" not in fams


def test_a_run_that_failed_before_its_batch_still_exports_time_exit_code_and_carry_over() -> None:
    previous = render_metrics(report("completed"), now=1000, duration_s=1)
    fams = parse(render_metrics({}, now=2000, duration_s=0.4, previous=previous, exit_code=75))
    assert value(fams, P + "exit_code") == 75
    assert value(fams, P + "last_run_timestamp_seconds") == 2000
    assert value(fams, P + "last_success_timestamp_seconds") == 1000
    assert P + "batch_status" not in fams and P + "calls_total" not in fams and P + "jobs" not in fams


# ---------------------------------------------------------------------------------- atomic file

def test_write_is_atomic_leaves_no_temp_and_is_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "prompt_analyzer.prom"
    old = os.umask(0o077)
    try:
        write_metrics_file(target, "a 1\n")
        write_metrics_file(target, "a 2\n")
    finally:
        os.umask(old)
    assert target.read_text() == "a 2\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["prompt_analyzer.prom"]
    assert read_previous(target) == "a 2\n"
    assert read_previous(tmp_path / "missing.prom") is None


def test_write_into_a_missing_directory_raises_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        write_metrics_file(tmp_path / "nope" / "x.prom", "a 1\n")
    assert list(tmp_path.iterdir()) == []


def test_write_failure_removes_the_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "x.prom"
    write_metrics_file(target, "a 1\n")
    os.mkdir(tmp_path / "dir.prom")  # replacing a directory by a file fails after the temp file is written
    with pytest.raises(OSError):
        write_metrics_file(tmp_path / "dir.prom", "a 2\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.prom", "x.prom"]


def test_a_concurrent_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "prompt_analyzer.prom"
    versions = [render_metrics(report(), now=float(i), duration_s=1.0) * 200 for i in range(2)]
    assert len(versions[0]) > 100_000  # large enough that a non-atomic write would be caught mid-way
    write_metrics_file(target, versions[0])
    stop = threading.Event()
    seen: list[int] = []
    bad: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            text = target.read_text()
            (seen if text in versions else bad).append(len(text))

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(150):
            write_metrics_file(target, versions[i % 2])
    finally:
        stop.set()
        t.join()
    assert not bad, f"{len(bad)} partial reads"
    assert len(seen) > 10
    assert [p.name for p in tmp_path.iterdir()] == ["prompt_analyzer.prom"]
