"""Benchmark 4: scale and memory, 10,000 and 100,000 active prompts, platforms with no latency.

For each size, on a fresh database: import the prompts, create the batch with a timed direct call to
``Store.create_batch`` (the one INSERT ... SELECT of all the batch's jobs), then `analyze run --key K`
resumes that batch as a child process whose peak RSS comes from wait4() (ru_maxrss) and whose RSS
is also sampled over the run.  Calls per second = calls / the run's duration.

    .venv/bin/python bench/scale.py [--sizes 10000,100000] [--platforms openai]

By default only the openai platform is called, so 100,000 prompts are 100,000 calls (all four would
be 400,000 calls, over 20 minutes on a 2-core machine); `--platforms openai,gemini,claude,perplexity`
runs them all.  Both sizes use the same platforms so their memory is comparable.

`--max-seconds S` stops each run cleanly after S seconds (SIGINT: calls in flight finish, the batch
stays resumable): peak RSS and calls/s then cover the part that ran, over a batch of full size.

Targets: peak RSS under 300 MB and within 10% between the sizes; the 100,000 jobs created in < 5 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import overhead as ov


async def create_batch(env: dict[str, str], key: str, platforms: list[str]) -> tuple[float, int]:
    import os

    from prompt_analyzer.config import load_settings
    from prompt_analyzer.db import open_database

    old = dict(os.environ)
    os.environ.update(env)
    try:
        settings = load_settings()
        db = await open_database(settings, auto_migrate=False)
        try:
            t0 = time.perf_counter()
            batch, created = await db.store.create_batch(key=key, trigger="manual", platforms=platforms)
            dt = time.perf_counter() - t0
            assert created
            return dt, int(batch["total_jobs"])
        finally:
            await db.close()
    finally:
        os.environ.clear()
        os.environ.update(old)


def one_size(sim: c.Simulator, n: int, platforms: list[str], concurrency: int,
             max_seconds: float | None = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale{n}-"))
    url, dbname = c.fresh_database(f"scale{n}")
    try:
        cfg = c.toml_config(work / "config.toml", {}, ov.platforms_cfg(concurrency, platforms))
        env = c.base_env(sim, url, cfg, work / "home")
        import_s = c.import_prompts(env, n, work)
        key = f"bench-scale-{n}"
        create_s, jobs = asyncio.run(create_batch(env, key, platforms))
        c.say(f"N={n}: import {import_s:.1f}s, create_batch {create_s:.2f}s for {jobs} jobs")
        cmd = c.analyze_cmd("run", "--key", key, "--json")
        c.say(f"running: {' '.join(cmd[1:])}  (N={n}, platforms {','.join(platforms)})")
        simcpu0 = sim.cpu_s()
        db0 = c.db_counters(url)
        r = c.run_child(cmd, env, dbname=dbname, sample_every=0.5, stop_after_s=max_seconds)
        simcpu = sim.cpu_s() - simcpu0
        db1 = c.db_counters(url)
        with c.psycopg.connect(url, autocommit=True) as conn:
            size_mb = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20
            shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
        if r.summary is None:
            raise RuntimeError(f"analyze run failed (exit {r.returncode}): {r.stderr_tail}")
        per = c.summary_calls(r.summary)
        calls = sum(v["calls"] for v in per.values())
        dur = float(r.summary["duration_s"])
        rss = [s[1] for s in r.samples]
        k = len(rss)
        return {
            "n_prompts": n, "platforms": platforms, "jobs": jobs, "stopped_after_s": max_seconds,
            "status": r.summary.get("status"),
            "import_s": round(import_s, 2), "create_batch_s": round(create_s, 3),
            "calls": calls, "success": sum(v["success"] for v in per.values()),
            "error": sum(v["error"] for v in per.values()),
            "duration_s": dur, "process_wall_s": round(r.wall_s, 2), "calls_per_s": round(calls / dur, 1),
            "peak_rss_mb": round(r.maxrss_mb, 1),
            "rss_mb_at": {f"{q}%": round(rss[min(k - 1, k * q // 100)], 1) for q in (10, 25, 50, 75, 90)} if k else {},
            "cpu_ms_per_call": {"tool": round(1000 * r.cpu_s / calls, 3), "simulator": round(1000 * simcpu / calls, 3),
                                "postgres_backends": round(1000 * r.pg_cpu_s / calls, 3)},
            "database": {"size_mb_after": round(size_mb, 1), "shared_buffers": shared_buffers,
                         "per_call": {k: round((db1[k] - db0[k]) / max(1, calls), 3) for k in db0}},
            "exit_code": r.returncode,
        }
    finally:
        c.drop_database(dbname)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--platforms", default="openai")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--name", default="scale")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop each run cleanly (SIGINT) after this long; figures then cover the calls made")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    platforms = [p.strip() for p in args.platforms.split(",")]
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator("--profile", "fast")
    runs = []
    try:
        for n in sizes:
            runs.append(one_size(sim, n, platforms, args.concurrency, args.max_seconds))
            r = runs[-1]
            c.say(f"N={n}: {r['calls']} calls in {r['duration_s']:.1f}s = {r['calls_per_s']:.0f}/s, "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB, create_batch {r['create_batch_s']:.2f}s")
    finally:
        sim.stop()
    peaks = [r["peak_rss_mb"] for r in runs]
    spread = (max(peaks) - min(peaks)) / min(peaks) if peaks else 0.0
    biggest = max(runs, key=lambda r: r["n_prompts"])
    targets = {
        "peak_rss_under_300mb": all(p < 300 for p in peaks),
        "rss_spread_pct": round(100 * spread, 1),
        "rss_within_10pct": spread <= 0.10,
        "create_batch_s_at_largest": biggest["create_batch_s"],
        "create_batch_under_5s": biggest["create_batch_s"] < 5 if biggest["n_prompts"] >= 100_000 else None,
    }
    c.say(f"targets: {targets}")
    c.save(args.name, {"benchmark": "scale", "machine": m, "result": {"runs": runs}, "targets": targets})


if __name__ == "__main__":
    main()
