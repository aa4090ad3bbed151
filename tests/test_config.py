"""Settings: defaults, validation naming the key, secrets from the environment and credentials."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from prompt_analyzer.config import ConfigError, Secret, default_platform, load_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_defaults_without_a_file() -> None:
    s = load_settings(env={})
    assert s.run.prompt_concurrency is None and s.run.page_size == 500 and s.run.grace_period_s == 30
    assert s.platform("openai").model == "gpt-4.1-mini" and s.platform("openai").max_attempts == 4
    assert not any(p.configured for p in s.platforms.values())
    assert s.database.url is None


def test_contract_example_parses(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, """
[run]
prompt_concurrency = 5
page_size = 100
[platforms.openai]
enabled = true
model = "gpt-4.1-mini"
rpm = 5000
tpm = 2000000
max_concurrency = 50
timeout_s = 120
max_attempts = 4
web_search = true
input_price_per_mtok = 0.40
output_price_per_mtok = 1.60
request_fee = 0.0
"""), env={"OPENAI_API_KEY": "sk-x"})
    o = s.platform("openai")
    assert s.run.prompt_concurrency == 5 and o.rpm == 5000 and o.tpm == 2_000_000
    assert o.input_price_per_mtok == Decimal("0.4") and o.configured


def test_limits_default_to_auto_and_accept_auto(tmp_path: Path) -> None:
    """Issue 12: nothing to tune; "auto" (held as None) is the default, a number is a bound."""
    s = load_settings(write(tmp_path, """
[platforms.openai]
rpm = "auto"
tpm = "auto"
max_concurrency = "auto"
max_concurrency_cap = 64
rpd = 10000
[platforms.claude]
rpm = 4000.5
max_concurrency = 30
"""), env={})
    o, c, g = s.platform("openai"), s.platform("claude"), s.platform("gemini")
    assert (o.rpm, o.tpm, o.max_concurrency, o.max_concurrency_cap, o.rpd) == (None, None, None, 64, 10000)
    assert (c.rpm, c.max_concurrency) == (4000.5, 30)
    assert (g.rpm, g.tpm, g.max_concurrency, g.rpd, g.auto_start_rpm) == (None, None, None, None, 300.0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[run]\npage_size = 0\n", "run.page_size: must be > 0"),
        ("[run]\npage_size = true\n", "run.page_size: expected int, got a boolean"),
        ("[platforms.bard]\nrpm = 1\n", "platforms.bard: unknown platform"),
        ("[platforms.openai]\napi_key = \"sk\"\n", "API keys are not read from the config file"),
        ("[database]\nurl = \"postgres://\"\n", "set DATABASE_URL instead"),
        ("[platforms.perplexity]\napi = \"chat\"\n", "platforms.perplexity.api"),
        ("[nope]\n", "nope: unknown section"),
        ("[run\n", "invalid TOML"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        load_settings(write(tmp_path, text), env={})


def test_toml_error_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 3"):
        load_settings(write(tmp_path, "[run]\npage_size = 1\nprompt_concurrency = \n"), env={})


def test_keys_from_credentials_directory(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ANTHROPIC_API_KEY").write_text("sk-ant-from-file\n")
    s = load_settings(env={"CREDENTIALS_DIRECTORY": str(creds), "GEMINI_API_KEY": "g", "GOOGLE_API_KEY": "goo"})
    assert s.platform("claude").api_key is not None and s.platform("claude").api_key.get() == "sk-ant-from-file"
    gem = s.platform("gemini").api_key
    assert gem is not None and gem.get() == "goo"  # the SDK's preference when both are set


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[platforms.openai]\nrpm = nan\n", "platforms.openai.rpm: must be a finite number"),
        ("[platforms.openai]\nrpm = inf\n", "platforms.openai.rpm: must be a finite number"),
        ("[platforms.claude]\ntimeout_s = inf\n", "platforms.claude.timeout_s: must be a finite number"),
        ("[platforms.gemini]\ninput_price_per_mtok = nan\n",
         "platforms.gemini.input_price_per_mtok: must be a finite number"),
        ("[platforms.perplexity]\nrequest_fee = inf\n", "platforms.perplexity.request_fee: must be a finite number"),
        ("[platforms.openai]\noutput_price_per_mtok = \"Infinity\"\n",
         "platforms.openai.output_price_per_mtok: must be a finite number"),
        ("[run]\ngrace_period_s = nan\n", "run.grace_period_s: must be a finite number"),
        ("[run]\ndb_retry_s = inf\n", "run.db_retry_s: must be a finite number"),
        ("[run]\nlease_s = nan\n", "run.lease_s: must be a finite number"),
        ("[run]\nbackoff_base_s = -nan\n", "run.backoff_base_s: must be a finite number"),
        ("[run]\nbackoff_max_s = +inf\n", "run.backoff_max_s: must be a finite number"),
    ],
)
def test_nan_and_inf_are_refused_naming_the_key(tmp_path: Path, text: str, needle: str) -> None:
    """TOML allows nan and inf; no setting can use them (a nan rate or timeout never compares)."""
    with pytest.raises(ConfigError, match="^" + needle.replace(".", r"\.")):
        load_settings(write(tmp_path, text), env={})


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[nope]\n", "nope: unknown section (known: run, platforms, database, coordination)"),
        ("[platforms.bard]\n", "platforms.bard: unknown platform (known: openai, gemini, claude, perplexity)"),
        ("[run]\npage_sise = 5\n", "run.page_sise: unknown key (known: backoff_base_s, "),
        ("[database]\npoolmax = 5\n", "database.poolmax: unknown key (known: pool_max, pooler)"),
        ("[platforms.openai]\nrpmm = 5\n",
         "platforms.openai.rpmm: unknown key (known: api, api_key_env, auto_start_rpm, base_url, "),
        ("[platforms.openai]\nname = \"x\"\n", "platforms.openai.name: unknown key"),
        ("[platforms.openai.extra]\nx = 1\n", "platforms.openai.extra: unknown key"),
        ("run = 5\n", "run: must be a table"),
        ("[platforms]\nopenai = 5\n", "platforms.openai: must be a table"),
        ("[run]\npage_size = \"5\"\n", "run.page_size: expected int, got str '5'"),
        ("[platforms.openai]\nrpm = \"5\"\n", "platforms.openai.rpm: must be \"auto\" or a positive number, got '5'"),
        ("[platforms.openai]\nmax_concurrency = \"lots\"\n",
         "platforms.openai.max_concurrency: must be \"auto\" or a positive integer, got 'lots'"),
        ("[platforms.openai]\nrpd = 0\n", "platforms.openai.rpd: must be > 0, got 0"),
        ("[platforms.openai]\nenabled = 1\n", "platforms.openai.enabled: expected bool, got int 1"),
        ("[platforms.openai]\nmodel = \" \"\n", "platforms.openai.model: must not be empty"),
        ("[platforms.openai]\nrequest_fee = \"abc\"\n", "platforms.openai.request_fee: not a number: 'abc'"),
        ("[platforms.openai]\nrequest_fee = -1\n", "platforms.openai.request_fee: must be >= 0, got -1"),
        ("[run]\ngrace_period_s = -1\n", "run.grace_period_s: must be >= 0, got -1"),
        ("[run]\nprompt_concurrency = \"fast\"\n", 'run.prompt_concurrency: must be "auto" or a positive integer'),
        ("[database]\npooler = \"x\"\n", "database.pooler: must be auto, transaction or session, got 'x'"),
    ],
)
def test_every_refusal_names_the_key(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, text), env={})
    assert str(e.value).startswith(needle)


def test_values_keep_their_types(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, """
[run]
prompt_concurrency = "auto"
grace_period_s = 0
lease_s = 180
[platforms.openai]
request_fee = "0.001"
output_price_per_mtok = 3
"""), env={})
    assert s.run.prompt_concurrency is None and s.run.grace_period_s == 0.0 and s.run.lease_s == 180.0
    o = s.platform("openai")
    assert o.request_fee == Decimal("0.001") and o.output_price_per_mtok == Decimal(3)
    assert s.platform("claude") == default_platform("claude")


def test_replace_works_and_validates() -> None:
    """Callers derive settings with dataclasses.replace (the demo); the new values are checked too."""
    s = load_settings(env={"OPENAI_API_KEY": "sk-abcdef"})
    p = dataclasses.replace(s.platform("gemini"), enabled=False, base_url="http://127.0.0.1:1/", rpm=600_000.0,
                            api_key=Secret("sim-key"), api="sonar")
    s2 = dataclasses.replace(s, platforms={**s.platforms, "gemini": p})
    assert s2.platform("gemini").configured and s2.platform("gemini").rpm == 600_000.0
    assert s2.platform("openai") is s.platform("openai") and s2.run is s.run
    with pytest.raises(ValidationError):
        dataclasses.replace(p, rpm=float("nan"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.rpm = 1.0  # type: ignore[misc]
    assert "sk-abcdef" not in repr(s) and "sim-key" not in repr(s2)
