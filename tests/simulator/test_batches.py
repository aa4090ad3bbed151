"""The simulator's batch APIs on the wire: request validation, the providers' shapes, time and cancel."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import httpx
import pytest

from prompt_analyzer.simulator import RunningSimulator, SimulatorConfig, SimulatorConfigError

OPENAI_AUTH = {"Authorization": "Bearer sk-test"}
ANTHROPIC_AUTH = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def test_batch_settings_round_trip_and_are_checked() -> None:
    config = SimulatorConfig.from_dict(
        {"batch_processing_s": 2.5, "batch_expire_after_s": 1, "batch_create_delay_s": 0})
    assert (config.batch_processing_s, config.batch_expire_after_s) == (2.5, 1.0)
    assert SimulatorConfig.from_dict(config.to_dict()) == config
    with pytest.raises(SimulatorConfigError, match="must be >= 0"):
        SimulatorConfig.from_dict({"batch_processing_s": -1})


async def _upload(http: httpx.AsyncClient, sim: RunningSimulator, lines: list[dict[str, object]]) -> str:
    data = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    r = await http.post(f"{sim.base_urls['openai']}/files", headers=OPENAI_AUTH,
                        files={"file": ("in.jsonl", data)}, data={"purpose": "batch"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def test_openai_batch_output_and_error_files(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    line = {"method": "POST", "url": "/v1/responses"}
    fid = await _upload(http, sim, [
        {**line, "custom_id": "ok", "body": {"model": "gpt-4.1-mini", "input": "hello"}},
        {**line, "custom_id": "bad", "body": {"model": "gpt-4.1-mini", "input": "x [[sim:fault=500]]"}},
    ])
    base = sim.base_urls["openai"]
    wrong = await http.post(f"{base}/batches", headers=OPENAI_AUTH,
                            json={"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "endpoint"
    r = await http.post(f"{base}/batches", headers=OPENAI_AUTH, json={
        "input_file_id": fid, "endpoint": "/v1/responses", "completion_window": "24h", "metadata": {"k": "v"}})
    batch = r.json()
    assert (batch["status"], batch["metadata"]) == ("completed", {"k": "v"})  # processing time 0
    assert batch["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    out = (await http.get(f"{base}/files/{batch['output_file_id']}/content", headers=OPENAI_AUTH)).text
    err = (await http.get(f"{base}/files/{batch['error_file_id']}/content", headers=OPENAI_AUTH)).text
    ok_line, bad_line = json.loads(out), json.loads(err)
    assert ok_line["custom_id"] == "ok" and ok_line["response"]["status_code"] == 200
    assert ok_line["response"]["body"]["object"] == "response"
    assert bad_line["custom_id"] == "bad" and bad_line["response"]["status_code"] == 500
    assert (await http.post(f"{base}/batches", json={})).status_code == 401  # no key


async def test_anthropic_counts_and_cancel(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    sim.set_config(replace(sim.config, batch_processing_s=3600.0))
    base = f"{sim.base_urls['claude']}/v1/messages/batches"
    params = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    bad = await http.post(base, headers=ANTHROPIC_AUTH,
                          json={"requests": [{"custom_id": "no spaces", "params": params}]})
    assert bad.status_code == 400 and "custom_id" in bad.json()["error"]["message"]
    r = await http.post(base, headers=ANTHROPIC_AUTH, json={"requests": [{"custom_id": "c1", "params": params}]})
    b = r.json()
    assert b["processing_status"] == "in_progress" and b["results_url"] is None
    assert b["request_counts"] == {"processing": 1, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    assert (await http.get(f"{base}/{b['id']}/results", headers=ANTHROPIC_AUTH)).status_code == 400
    await http.post(f"{base}/{b['id']}/cancel", headers=ANTHROPIC_AUTH)
    await asyncio.sleep(0)
    ended = (await http.get(f"{base}/{b['id']}", headers=ANTHROPIC_AUTH)).json()
    assert ended["processing_status"] == "ended" and ended["request_counts"]["canceled"] == 1
    lines = (await http.get(ended["results_url"], headers=ANTHROPIC_AUTH)).text.splitlines()
    assert [json.loads(x)["result"]["type"] for x in lines] == ["canceled"]


async def test_gemini_inline_batch_keeps_order_and_metadata(sim: RunningSimulator, http: httpx.AsyncClient) -> None:
    base = sim.base_urls["gemini"].rstrip("/")
    auth = {"x-goog-api-key": "AIzaTest"}
    reqs = [{"request": {"contents": [{"parts": [{"text": t}], "role": "user"}], "tools": [{"googleSearch": {}}]},
             "metadata": {"key": k}} for k, t in (("g1", "first"), ("g2", "second [[sim:fault=503]]"))]
    r = await http.post(f"{base}/v1beta/models/gemini-2.5-flash-lite:batchGenerateContent", headers=auth,
                        json={"batch": {"displayName": "d", "inputConfig": {"requests": {"requests": reqs}}}})
    op = r.json()
    assert op["name"].startswith("batches/") and op["metadata"]["displayName"] == "d"
    got = (await http.get(f"{base}/v1beta/{op['name']}", headers=auth)).json()
    assert got["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    inlined = got["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert [x["metadata"]["key"] for x in inlined] == ["g1", "g2"]
    assert "groundingMetadata" in inlined[0]["response"]["candidates"][0]  # search in batch mode
    assert inlined[1]["error"]["code"] == 503
    file_src = await http.post(f"{base}/v1beta/models/gemini-2.5-flash-lite:batchGenerateContent", headers=auth,
                               json={"batch": {"displayName": "f", "inputConfig": {"fileName": "files/x"}}})
    assert file_src.status_code == 400
