"""Benchmark 2: prompt-analyzer against the original design, same run, same simulator.

Three runs of the same N prompts x 4 platforms on the simulator of benchmark 1 (realistic latency,
different RPM per platform), each on a fresh database where one is used:

* ours: `analyze run` with the default ``prompt_concurrency = "auto"`` (a lane per platform);
* original via our engine: `analyze run` with ``prompt_concurrency = 5`` (5 prompts in flight, each
  waiting for all its platforms);
* original model: bench/original_model.py, a stand-alone model of the original scheduling
  (semaphore of 5 prompts, in-memory timestamp limiter, same SDK calls, no database).

    .venv/bin/python bench/vs_original.py [--n 200]

N defaults to 200: the original design needs about 0.8 s per prompt here, so N = 2,000 would take
about half an hour per original run.  Ours at N = 2,000 is benchmark 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import rate_bound as rb


def run_model(sim: c.Simulator, n: int, slots: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-orig-"))
    platforms = {p: {"rpm": rb.RPM[p], "max_concurrency": rb.concurrency_for(rb.RPM[p], rb.LATENCY[p])}
                 for p in rb.RPM}
    cfg = c.toml_config(work / "config.toml", {}, platforms)
    env = c.base_env(sim, "postgresql://unused@127.0.0.1:1/none", cfg, work / "home")
    csv = c.write_prompts(work / "prompts.csv", n)
    before = sim.stats()
    cmd = [c.PY, str(Path(__file__).resolve().parent / "original_model.py"), str(csv), "--slots", str(slots)]
    c.say(f"running: bench/original_model.py prompts.csv --slots {slots}  (N={n})")
    r = c.run_child(cmd, env)
    after = sim.stats()
    if r.summary is None:
        raise RuntimeError(f"original model failed (exit {r.returncode}): {r.stderr_tail}")
    s = r.summary
    sim_per = c.sim_counts(before, after)
    return {
        "n_prompts": n, "slots": slots, "duration_s": s["duration_s"], "process_wall_s": round(r.wall_s, 2),
        "calls": sum(p["calls"] for p in s["platforms"].values()),
        "success": sum(p["success"] for p in s["platforms"].values()),
        "error": sum(p["error"] for p in s["platforms"].values()),
        "retries": sum(p["retries"] for p in s["platforms"].values()),
        "sim_429": sum(v.get("429", 0) for v in sim_per.values()),
        "per_platform": s["platforms"], "tool_cpu_s": round(r.cpu_s, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--ours-n2000", default=str(c.RESULTS / "rate_bound.json"),
                    help="benchmark 1's result, quoted for the N=2000 comparison if present")
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator(config=rb.sim_config())
    try:
        ours = rb.run_ours(args.n, tag="vs_auto", sim=sim)
        ours5 = rb.run_ours(args.n, prompt_concurrency=5, tag="vs_pc5", sim=sim)
        model = run_model(sim, args.n, 5)
    finally:
        sim.stop()
    t_star = ours["ideal_s"]
    res: dict[str, Any] = {
        "n_prompts": args.n,
        "ideal_s": t_star,
        "ours_auto": ours,
        "ours_prompt_concurrency_5": ours5,
        "original_model": model,
        "speedup_vs_prompt_concurrency_5": round(ours5["duration_s"] / ours["duration_s"], 2),
        "speedup_vs_original_model": round(model["duration_s"] / ours["duration_s"], 2),
    }
    prior = Path(args.ours_n2000)
    if prior.exists():
        r1 = json.loads(prior.read_text())["result"]
        per_prompt_orig = model["duration_s"] / args.n
        res["extrapolated_n2000"] = {
            "ours_measured_s": r1["duration_s"],
            "original_model_extrapolated_s": round(per_prompt_orig * r1["n_prompts"], 1),
            "speedup": round(per_prompt_orig * r1["n_prompts"] / r1["duration_s"], 2),
            "note": "original design is linear in N (5 prompts per slowest-of-4 latency); extrapolated from N="
                    f"{args.n}",
        }
    c.say(f"N={args.n}: ours {ours['duration_s']:.1f}s (T*={t_star:.1f}s); prompt_concurrency=5 "
          f"{ours5['duration_s']:.1f}s (x{res['speedup_vs_prompt_concurrency_5']}); original model "
          f"{model['duration_s']:.1f}s (x{res['speedup_vs_original_model']})")
    if "extrapolated_n2000" in res:
        e = res["extrapolated_n2000"]
        c.say(f"N=2000: ours {e['ours_measured_s']:.1f}s measured vs original ~{e['original_model_extrapolated_s']}s "
              f"(x{e['speedup']})")
    c.save("vs_original", {"benchmark": "vs_original", "machine": m, "result": res})


if __name__ == "__main__":
    main()
