"""Benchmark 6: how close `analyze run --dry-run` comes to the bill, and how far a budget overshoots.

On a fresh database and the simulator (realistic latencies, the tool paced at the limits below):

1. N prompts, no history at all: dry run (the stated defaults), then the run it predicted;
2. the same prompts again under a new key: dry run (each pair's own history), then the run;
3. N/2 new prompts (the old ones deactivated): dry run (the platforms' history), then the run;
4. the prompts of 2 under `--max-cost-usd` = half their bill: what the run spent against the budget.

Error = (estimate - billed) / billed, per platform and in total, for cost and tokens; duration likewise.

    .venv/bin/python bench/estimate_error.py [--n 500]

Target (issue 14): the dry run predicts the bill within 15% on the simulator.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

RPM = {"openai": 3000, "gemini": 2400, "claude": 1200, "perplexity": 1000}
LATENCY = {"openai": 1.5, "gemini": 1.5, "claude": 2.5, "perplexity": 3.0}  # the realistic profile's means
IN_FLIGHT = {p: max(10, int(RPM[p] / 60 * LATENCY[p] * 2)) for p in RPM}
TARGET = 0.15


def sim_config() -> dict[str, Any]:
    return {"profile": "realistic", "seed": 7,
            "platforms": {p: {"rpm": None, "latency_mean_s": LATENCY[p], "latency_sigma": 0.5} for p in RPM}}


def _err(est: float | None, billed: float) -> float | None:
    return None if est is None or not billed else round((est - billed) / billed, 4)


def analyze(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    p = subprocess.run(c.analyze_cmd(*args), cwd=c.ROOT, env=env, capture_output=True, text=True, timeout=3600)
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        raise RuntimeError(f"analyze {' '.join(args)} exit {p.returncode}: {p.stderr[-2000:]}") from None


def compare(est: dict[str, Any], billed: dict[str, Any]) -> dict[str, Any]:
    plats = {}
    for name, e in est["platforms"].items():
        b = billed["platforms"].get(name, {})
        plats[name] = {"calls": e["calls"], "basis": e["basis"],
                       "cost_est_usd": e["cost_live_usd"], "cost_billed_usd": b.get("cost_usd", 0.0),
                       "cost_error": _err(e["cost_live_usd"], b.get("cost_usd", 0.0)),
                       "tokens_est": e["tokens"], "tokens_billed": b.get("tokens", 0),
                       "tokens_error": _err(e["tokens"], b.get("tokens", 0)),
                       "cost_batch_est_usd": e["cost_batch_usd"]}
    return {"platforms": plats,
            "cost_est_usd": est["cost_live_usd"], "cost_billed_usd": billed["cost_usd"],
            "cost_error": _err(est["cost_live_usd"], billed["cost_usd"]),
            "cost_batch_est_usd": est["cost_batch_usd"],
            "duration_est_s": est["duration_s"], "duration_s": billed.get("duration_s"),
            "duration_error": _err(est["duration_s"], billed.get("duration_s") or 0.0)}


def write_other_prompts(path: Path, n: int) -> Path:
    subjects = ["laptops", "mattresses", "VPN services", "email hosts", "road bikes", "espresso machines",
                "accounting tools", "wikis", "webcams", "survey tools"]
    project = "7b0a63f5-0000-4000-8000-000000000001"
    with path.open("w") as f:
        f.write("project_id,prompt_text\n")
        for i in range(n):
            f.write(f"{project},\"Which {subjects[i % len(subjects)]} would you recommend to a team of "
                    f"{i % 41 + 3} people? (variant {i})\"\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500, help="prompts (default 500)")
    ap.add_argument("--name", default="estimate_error", help="results file name (bench/results/NAME.json)")
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator(config=sim_config())
    work = Path(tempfile.mkdtemp(prefix="bench-estimate-"))
    url, dbname = c.fresh_database("estimate")
    try:
        platforms = {p: {"rpm": RPM[p], "max_concurrency": IN_FLIGHT[p]} for p in RPM}
        cfg = c.toml_config(work / "config.toml", {}, platforms)
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, args.n, work)
        stages: dict[str, Any] = {}
        for stage, key in (("no_history", "day-1"), ("pair_history", "day-2")):
            _, est = analyze(env, "run", "--dry-run", "--json", "--key", key)
            _, billed = analyze(env, "run", "--json", "--key", key)
            stages[stage] = compare(est, billed)
            c.say(f"{stage}: estimate {est['cost_live_usd']:.4f} USD, billed {billed['cost_usd']:.4f} USD "
                  f"({stages[stage]['cost_error']:+.2%}); duration {est['duration_s']} s est vs "
                  f"{billed.get('duration_s')} s")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE prompt_tracking SET is_active = false")
        subprocess.run(c.analyze_cmd("prompts", "import", str(write_other_prompts(work / "other.csv", args.n // 2))),
                       cwd=c.ROOT, env=env, check=True, capture_output=True)
        _, est = analyze(env, "run", "--dry-run", "--json", "--key", "day-3")
        _, billed = analyze(env, "run", "--json", "--key", "day-3")
        stages["platform_history"] = compare(est, billed)
        c.say(f"platform_history: estimate {est['cost_live_usd']:.4f} USD, billed {billed['cost_usd']:.4f} USD "
              f"({stages['platform_history']['cost_error']:+.2%})")

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE prompt_tracking SET is_active = NOT is_active")
        budget = round(stages["pair_history"]["cost_billed_usd"] / 2, 4)
        code, capped = analyze(env, "run", "--json", "--key", "capped", "--max-cost-usd", str(budget))
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                """SELECT coalesce(sum(r.cost), 0)::float8, coalesce(max(r.cost), 0)::float8,
                          count(*) FILTER (WHERE r.error_class = 'budget_exhausted'),
                          count(*) FILTER (WHERE r.status = 'success')
                   FROM ai_responses r JOIN analysis_jobs j ON j.id = r.analysis_job_id
                   JOIN analysis_batches b ON b.id = j.batch_id WHERE b.idempotency_key = 'capped'""").fetchone()
        assert row is not None
        spent, biggest, exhausted, answered = row
        stages["budget"] = {"max_cost_usd": budget, "billed_usd": round(spent, 6),
                            "overshoot_usd": round(spent - budget, 6),
                            "overshoot_pct": round(100 * (spent - budget) / budget, 3),
                            "largest_call_usd": round(biggest, 6), "calls_in_flight_max": sum(IN_FLIGHT.values()),
                            "answered": answered, "budget_exhausted_pairs": exhausted,
                            "status": capped.get("status"), "exit_code": code}
        c.say(f"budget {budget:.4f} USD: billed {spent:.4f} USD ({stages['budget']['overshoot_pct']:+.3f}%), "
              f"{answered} answered, {exhausted} budget_exhausted, status {capped.get('status')}")
        worst = max(abs(stages[s]["cost_error"]) for s in ("pair_history", "platform_history"))
        c.say(f"estimate error with history: worst {worst:.2%} (target {TARGET:.0%}: "
              f"{'met' if worst <= TARGET else 'MISSED'}); without history: "
              f"{stages['no_history']['cost_error']:+.2%}")
        c.save(args.name, {"machine": m, "n_prompts": args.n, "target": TARGET,
                           "config": {"tool": platforms, "simulator": sim_config()}, "stages": stages})
    finally:
        sim.stop()
        c.drop_database(dbname)


if __name__ == "__main__":
    main()
