"""Benchmark 3: our own cost per call, with the providers taking no time at all.

The simulator's "fast" profile (no latency, no limits).  End-to-end provider calls per second of
`analyze run` (SDK call, parsing, citations, database writes, pacing, claims) against
bench/bare_loop.py, which makes the same SDK calls through the same provider modules with the same
per-platform concurrency and no database.  Both are separate processes against the same simulator
process; CPU seconds per call are reported for the tool, the simulator and our database's Postgres
backends (2 cores are shared by all three).

    .venv/bin/python bench/overhead.py [--n 2000] [--concurrency 32] [--no-profile]

Then (unless --no-profile, or pyinstrument is not installed) a third run of `analyze run`
(--profile-n prompts, default 1000) under pyinstrument, whose top functions go to
bench/results/overhead_profile.txt and the JSON.
pyinstrument is optional: `pip install pyinstrument`.

Target: ours >= 70% of the bare loop's calls per second.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

HUGE_RPM = 1_000_000


def platforms_cfg(concurrency: int, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
    return {p: ({"rpm": HUGE_RPM, "max_concurrency": concurrency} if not only or p in only else {"enabled": False})
            for p in c.PLATFORMS}


def ours(sim: c.Simulator, n: int, concurrency: int, *, profile_to: Path | None = None,
         tag: str = "ovh") -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{tag}-"))
    url, dbname = c.fresh_database(tag)
    try:
        cfg = c.toml_config(work / "config.toml", {}, platforms_cfg(concurrency))
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, n, work)
        cmd = c.analyze_cmd("run", "--key", f"bench-{tag}", "--json")
        if profile_to is not None:
            cmd = [c.PY, "-m", "pyinstrument", "-r", "json", "-o", str(profile_to), "-m", "prompt_analyzer",
                   *cmd[3:]]
        c.say(f"running: {' '.join(cmd[1:])}  (N={n})")
        db0 = c.db_counters(url)
        sim0, simcpu0 = sim.stats(), sim.cpu_s()
        r = c.run_child(cmd, env, dbname=dbname)
        simcpu = sim.cpu_s() - simcpu0
        db1 = c.db_counters(url)
        sim_per = c.sim_counts(sim0, sim.stats())
        if r.summary is None:
            raise RuntimeError(f"analyze run failed (exit {r.returncode}): {r.stderr_tail}")
        per = c.summary_calls(r.summary)
        calls = sum(v["calls"] for v in per.values())
        dur = float(r.summary["duration_s"])
        delta = {k: db1[k] - db0[k] for k in db0}
        rows = delta["tup_inserted"] + delta["tup_updated"] + delta["tup_deleted"]
        return {
            "calls": calls, "success": sum(v["success"] for v in per.values()),
            "error": sum(v["error"] for v in per.values()),
            "sim_requests": sum(v.get("requests", 0) for v in sim_per.values()),
            "duration_s": dur, "process_wall_s": round(r.wall_s, 2),
            "calls_per_s": round(calls / dur, 1),
            "calls_per_s_process_wall": round(calls / r.wall_s, 1),
            "cpu_ms_per_call": {"tool": round(1000 * r.cpu_s / calls, 3), "simulator": round(1000 * simcpu / calls, 3),
                                "postgres_backends": round(1000 * r.pg_cpu_s / calls, 3),
                                "machine_total": round(1000 * r.system_busy_s / calls, 3)},
            "tool_cpu_user_s": round(r.cpu_user_s, 2), "tool_cpu_sys_s": round(r.cpu_sys_s, 2),
            "tool_peak_rss_mb": round(r.maxrss_mb, 1),
            "database": {"delta": delta, "rows_written": rows, "rows_written_per_s": round(rows / dur, 1),
                         "transactions_per_call": round(delta["xact_commit"] / calls, 3)},
            "exit_code": r.returncode,
        }
    finally:
        c.drop_database(dbname)


def bare(sim: c.Simulator, n: int, concurrency: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    cfg = c.toml_config(work / "config.toml", {}, platforms_cfg(concurrency))
    env = c.base_env(sim, "postgresql://unused@127.0.0.1:1/none", cfg, work / "home")
    csv = c.write_prompts(work / "prompts.csv", n)
    cmd = [c.PY, str(Path(__file__).resolve().parent / "bare_loop.py"), str(csv)]
    c.say(f"running: bench/bare_loop.py prompts.csv  (N={n})")
    simcpu0 = sim.cpu_s()
    r = c.run_child(cmd, env)
    simcpu = sim.cpu_s() - simcpu0
    if r.summary is None:
        raise RuntimeError(f"bare loop failed (exit {r.returncode}): {r.stderr_tail}")
    calls = sum(p["calls"] for p in r.summary["platforms"].values())
    dur = float(r.summary["duration_s"])
    return {
        "calls": calls, "error": sum(p["error"] for p in r.summary["platforms"].values()),
        "duration_s": dur, "process_wall_s": round(r.wall_s, 2), "calls_per_s": round(calls / dur, 1),
        "cpu_ms_per_call": {"tool": round(1000 * r.cpu_s / calls, 3), "simulator": round(1000 * simcpu / calls, 3),
                            "machine_total": round(1000 * r.system_busy_s / calls, 3)},
        "tool_peak_rss_mb": round(r.maxrss_mb, 1),
    }


def summarize_profile(path: Path, top: int = 25) -> dict[str, Any]:
    """Self and inclusive time per function from pyinstrument's JSON tree."""
    data = json.loads(path.read_text())
    root = data["root_frame"]
    total = float(root["time"])
    self_t: dict[str, float] = defaultdict(float)
    incl: dict[str, float] = defaultdict(float)

    def key(f: dict[str, Any]) -> str:
        fp = f.get("file_path_short") or f.get("file_path") or "?"
        return f"{f.get('function', '?')} ({fp}:{f.get('line_no', '?')})"

    def walk(f: dict[str, Any], stack: frozenset[str]) -> None:
        k = key(f)
        kids = f.get("children", [])
        self_t[k] += float(f["time"]) - sum(float(ch["time"]) for ch in kids)
        if k not in stack:
            incl[k] += float(f["time"])
        for ch in kids:
            walk(ch, stack | {k})

    walk(root, frozenset())

    by_pkg: dict[str, float] = defaultdict(float)
    for k, v in self_t.items():
        path = k.rsplit("(", 1)[-1].split(":")[0]
        parts = path.split("/")
        if parts[0] == "prompt_analyzer" and len(parts) > 2:
            pkg = "/".join(parts[:2])
        elif parts[0].startswith("<") or len(parts) == 1:
            pkg = "other"
        else:
            pkg = parts[0]
        by_pkg[pkg] += v
    named = {}
    for want in ("__call__ (prompt_analyzer/engine/dbcalls.py", "claim (prompt_analyzer/db/store.py",
                 "record_success (prompt_analyzer/db/store.py",
                 "record_successes (prompt_analyzer/db/store.py", "_run (prompt_analyzer/engine/writer.py",
                 "pending_pairs (prompt_analyzer/db/store.py",
                 "_record (prompt_analyzer/engine/pair.py", "ask (prompt_analyzer/providers/",
                 "_json (prompt_analyzer/db/store.py", "acquire (prompt_analyzer/engine/pacing.py"):
        named[want.replace(" (", " in ")] = round(sum(v for k, v in incl.items() if k.startswith(want)), 3)

    def pct(d: dict[str, float]) -> list[dict[str, Any]]:
        items = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [{"function": k, "s": round(v, 3), "pct": round(100 * v / total, 1)} for k, v in items]

    return {"total_s": round(total, 3), "self_by_package": pct(by_pkg), "named_inclusive_s": named,
            "top_self": pct(self_t), "top_inclusive": pct(incl)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="prompts (x 4 platforms = calls); default 2000")
    ap.add_argument("--concurrency", type=int, default=32, help="max_concurrency per platform, both sides")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--profile-n", type=int, default=1000, help="prompts in the profiled run (default 1000)")
    ap.add_argument("--profile-only", action="store_true",
                    help="only the profiled run; its summary replaces the profile in the existing overhead.json")
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator("--profile", "fast")
    prof: dict[str, Any] | None = None
    try:
        if not args.profile_only:
            b = bare(sim, args.n, args.concurrency)
            o = ours(sim, args.n, args.concurrency)
        if not args.no_profile:
            if importlib.util.find_spec("pyinstrument") is None:
                c.say("pyinstrument not installed: no profile (pip install pyinstrument)")
            else:
                pjson = c.RESULTS / "overhead_profile.json"
                c.RESULTS.mkdir(parents=True, exist_ok=True)
                po = ours(sim, args.profile_n, args.concurrency, profile_to=pjson, tag="ovhprof")
                prof = {"run": {k: po[k] for k in ("calls", "duration_s", "calls_per_s")},
                        **summarize_profile(pjson)}
                lines = [f"pyinstrument, `analyze run` of {po['calls']} calls, {prof['total_s']} s sampled", "",
                         "self time by package:"]
                lines += [f"  {x['pct']:5.1f}%  {x['s']:8.3f}s  {x['function']}" for x in prof["self_by_package"]]
                lines += ["", "inclusive time of our functions (s):"]
                lines += [f"  {v:8.3f}s  {k}" for k, v in prof["named_inclusive_s"].items()]
                lines += ["", "top self time:"]
                lines += [f"  {x['pct']:5.1f}%  {x['s']:8.3f}s  {x['function']}" for x in prof["top_self"]]
                lines += ["", "top inclusive time:"]
                lines += [f"  {x['pct']:5.1f}%  {x['s']:8.3f}s  {x['function']}" for x in prof["top_inclusive"]]
                (c.RESULTS / "overhead_profile.txt").write_text("\n".join(lines) + "\n")
                pjson.unlink()  # large; the summary is kept
    finally:
        sim.stop()
    if args.profile_only:
        path = c.RESULTS / "overhead.json"
        if path.exists() and prof is not None:
            data = json.loads(path.read_text())
            data["result"]["profile"] = prof
            data["profile_machine"] = m
            path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        return
    ratio = o["calls_per_s"] / b["calls_per_s"]
    res = {"n_prompts": args.n, "concurrency_per_platform": args.concurrency, "ours": o, "bare_loop": b,
           "ratio": round(ratio, 3), "profile": prof}
    c.say(f"ours {o['calls_per_s']:.0f} calls/s vs bare loop {b['calls_per_s']:.0f} calls/s: {ratio:.0%} "
          f"(target >= 70%); cpu ms/call ours {o['cpu_ms_per_call']} bare {b['cpu_ms_per_call']}")
    c.save("overhead", {"benchmark": "overhead", "machine": m, "result": res,
                        "target": {"ratio_min": 0.70, "met": ratio >= 0.70}})


if __name__ == "__main__":
    main()
