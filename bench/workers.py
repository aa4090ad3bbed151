"""Benchmark 6: several worker processes on one batch (`analyze run --workers N`).

Overhead scenario (the simulator's "fast" profile: no latency, no limits): calls per second with 1, 2
and 4 worker processes, CPU per call (every `analyze` process, the simulator, our database's Postgres
backends) and Postgres transactions per call (each store call is one transaction, one round trip with
its statements pipelined; from pg_stat_database.xact_commit), as N grows.

Rate-bound scenario (benchmark 1's limits and realistic latency): 4 workers sharing each platform's
quota through Redis (target T*/T >= 0.95 with <= 0.1% of calls answered 429), and the same 4 workers
without Redis (each takes rpm / 4 of each limit).

The machine has 2 cores shared with other work: the load average at each run's start and end is kept in
the JSON (os.getloadavg()); with more worker processes than cores, calls per second measure the
machine, not the design.

    .venv/bin/python bench/workers.py [--n 1000] [--rate-n 1000] [--only overhead|roundtrips|rate]

Round trips per call: the overhead scenario again (n / 2 prompts) with every connection through
bench/database.py's counting TCP proxy (a round trip is every time a client sends after the server
answered).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from rate_bound import LATENCY, RPM, concurrency_for, sim_config

HUGE_RPM = 1_000_000
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _config(path: Path, platforms: dict[str, dict[str, Any]], redis: str | None, lease_s: float = 30.0) -> Path:
    c.toml_config(path, {}, platforms)
    text = path.read_text() + f"\n[coordination]\nworker_lease_s = {lease_s}\n"
    if redis:
        text += f'redis_url = "{redis}"\n'
    path.write_text(text)
    return path


def _calling_span_s(url: str) -> float:
    """From the first claim to the last answer written: the batch's calling time, without the start-up
    of the processes."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT extract(epoch FROM max(updated_at) - min(created_at)) FROM ai_responses").fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def one_run(sim: c.Simulator, n: int, workers: int, platforms: dict[str, dict[str, Any]], *, redis: str | None,
            tag: str, proxy: Any = None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{tag}-"))
    url, dbname = c.fresh_database(tag)
    try:
        cfg = _config(work / "config.toml", platforms, redis)
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, n, work)
        if proxy is not None:  # bench/database.py's counting TCP proxy: every process's round trips
            proxy.reset()
            env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"
        cmd = c.analyze_cmd("run", "--key", f"bench-{tag}", "--workers", str(workers), "--json")
        c.say(f"running: {' '.join(cmd[3:])}  (N={n}, redis={'yes' if redis else 'no'})")
        load0 = _load()
        db0 = c.db_counters(url)
        sim0, simcpu0 = sim.stats(), sim.cpu_s()
        r = c.run_child(cmd, env, dbname=dbname)
        simcpu = sim.cpu_s() - simcpu0
        db1 = c.db_counters(url)
        sim_per = c.sim_counts(sim0, sim.stats())
        if r.summary is None:  # exit 1 (some pairs failed) still has its figures
            raise RuntimeError(f"analyze run failed (exit {r.returncode}): {r.stderr_tail}")
        calls = sum(v.get("requests", 0) for v in sim_per.values())
        ok = sum(v.get("ok", 0) for v in sim_per.values())
        sim_429 = sum(v.get("429", 0) for v in sim_per.values())
        dur = float(r.summary["duration_s"])
        span = _calling_span_s(url)
        delta = {k: db1[k] - db0[k] for k in db0}
        return {
            "workers": workers, "n_prompts": n, "redis": bool(redis),
            "calls": calls, "answered_ok": ok, "sim_429": sim_429,
            "sim_per_platform": {p: v for p, v in sim_per.items() if v.get("requests")},
            "sim_429_pct": round(100 * sim_429 / max(1, calls), 4),
            "pairs_success": sum(int(p["success"]) for p in r.summary["platforms"].values()),
            "pairs_error": sum(int(p["error"]) for p in r.summary["platforms"].values()),
            "duration_s": dur, "process_wall_s": round(r.wall_s, 2), "calling_span_s": round(span, 2),
            "calls_per_s": round(calls / dur, 1), "calls_per_s_calling_span": round(calls / max(span, 1e-9), 1),
            "cpu_ms_per_call": {"tool_all_processes": round(1000 * r.cpu_s / calls, 3),
                                "simulator": round(1000 * simcpu / calls, 3),
                                "postgres_backends": round(1000 * r.pg_cpu_s / calls, 3),
                                "machine_total": round(1000 * r.system_busy_s / calls, 3)},
            "postgres": {"transactions_per_call": round(delta["xact_commit"] / calls, 3),
                         "rows_written_per_call": round(
                             (delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]) / calls, 3),
                         "delta": delta},
            "loadavg": {"start": load0, "end": _load()},
            "exit_code": r.returncode,
            **({"round_trips_per_call": round(proxy.round_trips / calls, 3),
                "statements_per_call": round((proxy.msgs.get("Q", 0) + proxy.msgs.get("E", 0)) / calls, 3),
                "connections": proxy.connections} if proxy is not None else {}),
        }
    finally:
        c.drop_database(dbname)


def overhead(n: int) -> list[dict[str, Any]]:
    sim = c.Simulator("--profile", "fast")
    try:
        platforms = {p: {"rpm": HUGE_RPM, "max_concurrency": 32} for p in c.PLATFORMS}
        out = []
        for workers in (1, 2, 4):
            res = one_run(sim, n, workers, platforms, redis=None, tag=f"wovh{workers}")
            c.say(f"  {workers} worker(s): {res['calls_per_s']} calls/s ({res['calls_per_s_calling_span']} over the "
                  f"calling span), cpu ms/call {res['cpu_ms_per_call']}, "
                  f"transactions/call {res['postgres']['transactions_per_call']}, load {res['loadavg']}")
            out.append(res)
        return out
    finally:
        sim.stop()


def round_trips(n: int) -> list[dict[str, Any]]:
    """The overhead scenario again, every connection through a counting proxy: round trips per call."""
    from database import CountingProxy

    proxy = CountingProxy()
    sim = c.Simulator("--profile", "fast")
    try:
        platforms = {p: {"rpm": HUGE_RPM, "max_concurrency": 32} for p in c.PLATFORMS}
        out = []
        for workers in (1, 2, 4):
            res = one_run(sim, n, workers, platforms, redis=None, tag=f"wrt{workers}", proxy=proxy)
            c.say(f"  {workers} worker(s), proxied: {res['round_trips_per_call']} round trips/call, "
                  f"{res['statements_per_call']} statements/call, {res['postgres']['transactions_per_call']} "
                  f"transactions/call, {res['calls_per_s']} calls/s")
            out.append(res)
        return out
    finally:
        sim.stop()


def rate_bound(n: int, scale: float = 1.0) -> dict[str, Any]:
    """``scale``: every RPM limit divided by it (both sides), so that on a loaded machine the quotas, not
    the CPU, bind."""
    rpm = {p: RPM[p] / scale for p in RPM}
    config = sim_config()
    for p in RPM:
        config["platforms"][p]["rpm"] = rpm[p]
    out: dict[str, Any] = {"rpm": rpm}
    for name, redis in (("shared_redis", REDIS_URL), ("split_no_redis", None)):
        sim = c.Simulator(config=config)
        try:
            platforms = {p: {"rpm": rpm[p], "max_concurrency": concurrency_for(rpm[p], LATENCY[p])} for p in RPM}
            res = one_run(sim, n, 4, platforms, redis=redis, tag=f"wrate{name[:5]}")
        finally:
            sim.stop()
        per = {p: n / rpm[p] * 60 + LATENCY[p] for p in RPM}
        binding = max(per, key=lambda p: per[p])
        t_star = per[binding]
        res.update({"ideal_s": round(t_star, 2), "binding_platform": binding,
                    "efficiency": round(t_star / res["duration_s"], 4),
                    "efficiency_calling_span": round(t_star / max(res["calling_span_s"], 1e-9), 4)})
        res["target_met"] = res["efficiency"] >= 0.95 and res["sim_429_pct"] <= 0.1
        c.say(f"  4 workers, {name}: T={res['duration_s']}s (calling span {res['calling_span_s']}s), "
              f"T*={res['ideal_s']}s, T*/T {res['efficiency']} ({res['efficiency_calling_span']} over the span), "
              f"429s {res['sim_429']} ({res['sim_429_pct']}%), load {res['loadavg']}")
        out[name] = res
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="prompts in the overhead scenario (x 4 platforms)")
    ap.add_argument("--rate-n", type=int, default=1000, help="prompts in the rate-bound scenario")
    ap.add_argument("--rate-scale", type=float, default=1.0, help="divide benchmark 1's RPM limits by this")
    ap.add_argument("--only", choices=("overhead", "rate", "roundtrips"))
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    result: dict[str, Any] = {}
    if args.only in (None, "overhead"):
        result["overhead"] = overhead(args.n)
    if args.only in (None, "roundtrips"):
        result["round_trips"] = round_trips(args.n // 2)
    if args.only in (None, "rate"):
        result["rate_bound_4_workers"] = rate_bound(args.rate_n, args.rate_scale)
    c.save("workers" if not args.only else f"workers_{args.only}",
           {"benchmark": "workers", "machine": m, "loadavg_at_end": _load(), "result": result,
            "target": {"rate_bound_shared": {"efficiency_min": 0.95, "sim_429_pct_max": 0.1}}})


if __name__ == "__main__":
    main()
