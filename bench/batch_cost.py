"""Benchmark 6: the cost of one simulated day, live vs batch mode, per platform.

N prompts (default 2,000) x 4 platforms with the default models and web search on, against the
simulator (its answers are the same for a prompt in both modes, so token counts match and the difference
is the price).  The same prompts are run twice on one database: ``analyze run --mode live`` and
``analyze run --mode batch`` (OpenAI Batch, Anthropic Message Batches, Gemini Batch Mode; Perplexity has
no batch API and runs live in both).  Cost is what the rows say (``ai_responses.cost``, summed per
platform by ``run --json``).

    .venv/bin/python bench/batch_cost.py [--n 2000] [--no-web-search]

``--no-web-search`` (results in ``batch_cost_no_search.json``) shows the token prices alone: with search
on, the per-search fees, which no provider discounts in batch mode, are most of the bill.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c


def platform_config(web_search: bool) -> dict[str, dict[str, Any]]:
    return {p: {"rpm": 60000, "max_concurrency": 50, "timeout_s": 60, "web_search": web_search} for p in c.PLATFORMS}


def run_mode(env: dict[str, str], mode: str, dbname: str) -> dict[str, Any]:
    cmd = c.analyze_cmd("run", "--key", f"bench-{mode}", "--mode", mode, "--json")
    c.say(f"running: {' '.join(cmd[1:])}")
    r = c.run_child(cmd, env, dbname=dbname)
    if r.summary is None:
        raise RuntimeError(f"analyze run --mode {mode} failed (exit {r.returncode}): {r.stderr_tail}")
    return {
        "status": r.summary["status"],
        "duration_s": r.summary["duration_s"],
        "cost_usd": r.summary["cost_usd"],
        "platforms": {p: {k: v[k] for k in ("success", "error", "tokens", "cost_usd")}
                      for p, v in r.summary["platforms"].items()},
        "exit_code": r.returncode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="prompts (default 2000)")
    ap.add_argument("--name", default=None, help="results file name (bench/results/NAME.json)")
    ap.add_argument("--no-web-search", action="store_true", help="web_search = false on every platform")
    args = ap.parse_args()
    name = args.name or ("batch_cost_no_search" if args.no_web_search else "batch_cost")
    tool_config = platform_config(not args.no_web_search)
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator(config={"profile": "fast", "seed": 7})
    work = Path(tempfile.mkdtemp(prefix="bench-batch-cost-"))
    url, dbname = c.fresh_database("batchcost")
    try:
        cfg = c.toml_config(work / "config.toml", {"batch_poll_max_s": 1.0}, tool_config)
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, args.n, work)
        live = run_mode(env, "live", dbname)
        before = sim.stats()
        batch = run_mode(env, "batch", dbname)
        sim_per = c.sim_counts(before, sim.stats())
    finally:
        sim.stop()
        c.drop_database(dbname)
    per: dict[str, Any] = {}
    for p in c.PLATFORMS:
        lc, bc = live["platforms"][p]["cost_usd"], batch["platforms"][p]["cost_usd"]
        per[p] = {"live_usd": lc, "batch_usd": bc, "saving_pct": round(100 * (1 - bc / lc), 1) if lc else None,
                  "tokens_live": live["platforms"][p]["tokens"], "tokens_batch": batch["platforms"][p]["tokens"],
                  "provider_batches": sim_per.get(p, {}).get("batch_creates", 0)}
        c.say(f"{p:<11} live ${lc:>9.4f}  batch ${bc:>9.4f}  saving {per[p]['saving_pct']}%  "
              f"({per[p]['provider_batches']} provider batch(es))")
    total = {"live_usd": live["cost_usd"], "batch_usd": batch["cost_usd"],
             "saving_pct": round(100 * (1 - batch["cost_usd"] / live["cost_usd"]), 1)}
    c.say(f"{'total':<11} live ${total['live_usd']:>9.4f}  batch ${total['batch_usd']:>9.4f}  "
          f"saving {total['saving_pct']}%")
    c.save(name, {"benchmark": "batch_cost", "machine": m, "n_prompts": args.n,
                  "config": {"tool": tool_config, "simulator": {"profile": "fast", "seed": 7}},
                  "live": live, "batch": batch, "per_platform": per, "total": total})


if __name__ == "__main__":
    main()
