"""Pushgateway, health pings and the webhook over real HTTP: retried, bounded in time, never raising."""

from __future__ import annotations

import json
import time

from prompt_analyzer.ops import notify, ping, push_metrics, render_metrics

from .conftest import Endpoint

CHECK = "5f1b2c3d-aaaa-4bbb-8ccc-0123456789ab"  # a healthchecks check id: a secret, never in an error


# ---------------------------------------------------------------------------------- ping

async def test_ping_start_and_exit_codes(endpoint: Endpoint) -> None:
    url = f"{endpoint.url}/{CHECK}"
    assert await ping(url, "start") is None
    assert await ping(url + "/", 0) is None
    assert await ping(url, 75, run_id="r-1") is None
    assert [(r.method, r.path, r.query) for r in endpoint.requests] == [
        ("GET", f"/{CHECK}/start", ""), ("GET", f"/{CHECK}/0", ""), ("GET", f"/{CHECK}/75", "rid=r-1"),
    ]
    assert endpoint.requests[0].headers["User-Agent"].startswith("prompt-analyzer/")


async def test_ping_keeps_the_query_and_posts_a_body(endpoint: Endpoint) -> None:
    assert await ping(f"{endpoint.url}/ping/KEY/nightly?create=1", 1, body="3 calls failed") is None
    r = endpoint.requests[0]
    assert (r.method, r.path, r.query, r.body) == ("POST", "/ping/KEY/nightly/1", "create=1", b"3 calls failed")


async def test_ping_retries_5xx_then_succeeds(endpoint: Endpoint) -> None:
    endpoint.fail_first = 2
    assert await ping(f"{endpoint.url}/{CHECK}", 0) is None
    assert len(endpoint.requests) == 3


async def test_ping_gives_up_after_three_tries_without_leaking_the_check_id(endpoint: Endpoint) -> None:
    endpoint.fail_first = 10
    error = await ping(f"{endpoint.url}/{CHECK}", 0)
    assert error is not None and "HTTP 500" in error and "3 attempts" in error
    assert CHECK not in error and endpoint.url in error
    assert len(endpoint.requests) == 3


async def test_ping_does_not_retry_a_4xx(endpoint: Endpoint) -> None:
    endpoint.status = 404
    error = await ping(f"{endpoint.url}/{CHECK}", "start")
    assert error is not None and "HTTP 404" in error
    assert len(endpoint.requests) == 1


async def test_ping_to_a_dead_endpoint_returns_an_error_quickly(dead_url: str) -> None:
    t0 = time.monotonic()
    error = await ping(f"{dead_url}/{CHECK}", 0)
    elapsed = time.monotonic() - t0
    assert error is not None and "ConnectError" in error and "3 attempts" in error
    assert CHECK not in error
    assert elapsed < 15  # two short backoffs (0.5 s + 1 s); the bound is generous for a loaded machine


async def test_ping_to_a_hanging_endpoint_is_bounded_by_the_timeout(endpoint: Endpoint) -> None:
    endpoint.hang = True
    t0 = time.monotonic()
    error = await ping(f"{endpoint.url}/{CHECK}", 0, timeout=0.3)
    elapsed = time.monotonic() - t0
    assert error is not None and "timed out" in error
    assert len(endpoint.requests) == 3
    assert elapsed < 15  # 3 x 0.3 s + the backoffs (~3.4 s), never the hang itself


async def test_the_total_budget_caps_a_hanging_endpoint(endpoint: Endpoint) -> None:
    endpoint.hang = True
    t0 = time.monotonic()
    error = await ping(f"{endpoint.url}/{CHECK}", 0, timeout=10, budget_s=1.0)
    elapsed = time.monotonic() - t0
    assert error is not None and "timed out" in error
    assert 0.9 < elapsed < 8  # the 1 s budget, not the 10 s timeout
    t0 = time.monotonic()
    error = await notify(endpoint.url, {"status": "completed"}, timeout=10, attempts=5, budget_s=1.0)
    assert error is not None and time.monotonic() - t0 < 8  # the budget, not 5 attempts x 10 s


async def test_bad_input_returns_an_error_instead_of_raising() -> None:
    assert "invalid status" in (await ping("http://127.0.0.1:1/x", 256) or "")
    assert await ping("not a url", 0) is not None
    assert await ping("ftp://example.invalid/x", 0) is not None
    assert await notify("http://[::1", {"a": 1}) is not None
    assert await push_metrics("", "a 1\n") is not None


# ---------------------------------------------------------------------------------- notify

REPORT = {"batch_id": "b1", "key": "daily:2026-11-30", "status": "completed_with_errors",
          "platforms": {"openai": {"success": 3, "error": 1}}, "cost_usd": 0.25}


async def test_notify_posts_the_json_summary(endpoint: Endpoint) -> None:
    assert await notify(f"{endpoint.url}/hooks/batch", REPORT) is None
    (r,) = endpoint.requests
    assert (r.method, r.path) == ("POST", "/hooks/batch")
    assert r.headers["Content-Type"] == "application/json"
    assert json.loads(r.body) == REPORT


async def test_notify_retries_5xx_with_one_idempotency_key(endpoint: Endpoint) -> None:
    endpoint.fail_first, endpoint.fail_status = 2, 503
    assert await notify(endpoint.url, REPORT) is None
    assert len(endpoint.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in endpoint.requests}) == 1
    assert all(json.loads(r.body) == REPORT for r in endpoint.requests)


async def test_notify_honours_retry_after_on_429(endpoint: Endpoint) -> None:
    endpoint.fail_first, endpoint.fail_status, endpoint.retry_after = 1, 429, "1"
    t0 = time.monotonic()
    assert await notify(endpoint.url, REPORT) is None
    assert time.monotonic() - t0 >= 0.95
    assert len(endpoint.requests) == 2


async def test_notify_gives_up_after_its_attempts(endpoint: Endpoint) -> None:
    endpoint.fail_first = 10
    error = await notify(endpoint.url, REPORT, attempts=2)
    assert error is not None and "HTTP 500" in error and "upstream unhappy" in error and "2 attempts" in error
    assert len(endpoint.requests) == 2


async def test_notify_does_not_retry_a_4xx(endpoint: Endpoint) -> None:
    endpoint.status = 400
    assert "HTTP 400" in (await notify(endpoint.url, REPORT) or "")
    assert len(endpoint.requests) == 1


async def test_notify_to_a_dead_endpoint_is_bounded(dead_url: str) -> None:
    t0 = time.monotonic()
    error = await notify(dead_url, REPORT)
    assert error is not None and "ConnectError" in error
    assert time.monotonic() - t0 < 15


async def test_notify_serialises_dates_and_decimals(endpoint: Endpoint) -> None:
    from datetime import UTC, datetime
    from decimal import Decimal

    assert await notify(endpoint.url, {"at": datetime(2026, 11, 30, tzinfo=UTC), "cost": Decimal("0.5")}) is None
    assert json.loads(endpoint.requests[0].body) == {"at": "2026-11-30 00:00:00+00:00", "cost": "0.5"}


# ---------------------------------------------------------------------------------- pushgateway

async def test_push_metrics_posts_the_text_to_the_job_group(endpoint: Endpoint) -> None:
    text = render_metrics({"status": "completed", "platforms": {}}, now=1.0, duration_s=2.0, exit_code=0)
    assert await push_metrics(endpoint.url + "/", text) is None
    (r,) = endpoint.requests
    assert (r.method, r.path) == ("POST", "/metrics/job/prompt_analyzer")
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert r.body.decode() == text


async def test_push_metrics_encodes_an_awkward_job_name(endpoint: Endpoint) -> None:
    assert await push_metrics(endpoint.url, "a 1\n", job="nightly/eu") is None
    assert await push_metrics(endpoint.url, "a 1\n", job="night ly") is None
    assert [r.path for r in endpoint.requests] == ["/metrics/job@base64/bmlnaHRseS9ldQ==", "/metrics/job/night ly"]


async def test_push_metrics_retries_and_reports_failure(endpoint: Endpoint, dead_url: str) -> None:
    endpoint.fail_first = 1
    assert await push_metrics(endpoint.url, "a 1\n") is None
    assert len(endpoint.requests) == 2
    error = await push_metrics(dead_url, "a 1\n", timeout=1)
    assert error is not None and error.startswith("pushgateway to http://127.0.0.1:")
