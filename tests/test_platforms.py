"""The platform registry: a platform declared by configuration alone runs end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_analyzer.config import ConfigError, load_settings
from prompt_analyzer.platforms import BUILTINS, KINDS
from prompt_analyzer.providers import make_provider
from prompt_analyzer.providers.openai_chat import OpenAIChatProvider

from .harness import Env

GROK = """
[platforms.grok]
kind = "openai-chat"
base_url = "{url}"
model = "grok-4-fast"
api_key_env = "XAI_API_KEY"
search = "openai"
rpm = 60000
max_concurrency = 10
timeout_s = 5
"""


def test_declared_platform_is_settings_and_a_client(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, GROK.format(url="http://127.0.0.1:9/v1")), env={"XAI_API_KEY": "xai-k"})
    assert s.platform_names == (*BUILTINS, "grok")
    grok = s.platform("grok")
    assert (grok.kind_name, grok.model, grok.search, grok.configured) == ("openai-chat", "grok-4-fast", "openai", True)
    assert s.key_env("grok") == ("XAI_API_KEY",) and s.key_env("openai") == ("OPENAI_API_KEY",)
    assert isinstance(make_provider(grok), OpenAIChatProvider)
    assert s.platform("openai").kind_name == "openai"  # built-ins keep their own kind
    assert set(KINDS) == {"openai", "gemini", "claude", "perplexity", "openai-chat"}


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(("text", "message"), [
    ("[platforms.bard]\nmodel = 'x'\n", "platforms.bard: unknown platform (known: openai, gemini, claude, perplexity)"),
    ("[platforms.grok]\nkind = 'openai-chat'\nmodel = 'm'\napi_key_env = 'K'\n",
     "platforms.grok.base_url: required for kind 'openai-chat'"),
    ("[platforms.grok]\nkind = 'openai-chat'\nmodel = 'm'\nbase_url = 'http://x/v1'\n",
     "platforms.grok.api_key_env: required"),
    ("[platforms.grok]\nkind = 'telepathy'\nmodel = 'm'\n", "platforms.grok.kind: must be one of openai, gemini"),
    ("[platforms.Grok]\nkind = 'openai-chat'\n", "platforms.Grok: a platform's name is lowercase"),
    ("[platforms.grok]\nkind = 'openai-chat'\nbase_url = 'http://x/v1'\napi_key_env = 'K'\n",
     "platforms.grok.model: required"),
    ("[platforms.grok]\nkind = 'openai-chat'\nmodel = ' '\nbase_url = 'http://x/v1'\napi_key_env = 'K'\n",
     "platforms.grok.model: must not be empty"),
    ("[platforms.grok]\nkind = 'openai-chat'\napi_key = 'sk-x'\n", "platforms.grok.api_key: API keys are not read"),
])
def test_declared_platform_errors_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(_write(tmp_path, text), env={})
    assert str(e.value).startswith(message), str(e.value)


async def test_a_platform_declared_by_config_alone_runs_end_to_end(env: Env) -> None:
    env.config.write_text(env.config.read_text() + GROK.format(url=env.sim.base_urls["openai-chat"]))
    texts = ["best crm for a startup", "best running shoes"]
    await env.add_prompts(texts)
    r = await env.analyze("run", "--key", "grok", "--json", XAI_API_KEY="xai-test-key-000000000000")
    assert r.code == 0, r.stderr[-2000:]
    out = r.json()
    assert out["platforms"]["grok"]["success"] == 2 and out["platforms"]["openai"]["success"] == 2
    rows = [x for x in await env.rows() if x["platform"] == "grok"]
    assert len(rows) == 2 and all(x["status"] == "success" and x["response_text"] for x in rows)
    assert all(x["model_version"] and x["tokens_used"] for x in rows)
    cited = await env.store.fetchone(
        "SELECT count(*) AS n FROM ai_response_citations c JOIN ai_responses r ON r.id = c.ai_response_id "
        "WHERE r.platform = 'grok' AND c.cited")
    assert cited and cited["n"] > 0  # web search through the endpoint's dialect
    # the platform is a first-class name everywhere: --platform, prompts' platform lists
    r2 = await env.analyze("rerun", "grok", "--platform", "grok", "--json", XAI_API_KEY="xai-test-key-000000000000")
    assert r2.code == 0, r2.stderr[-2000:]
    bad = await env.analyze("run", "--platform", "bard", "--key", "x")
    assert bad.code == 2 and "unknown platform 'bard' (known: openai, gemini, claude, perplexity, grok)" in bad.stderr
