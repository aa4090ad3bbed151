"""Benchmark 7: the provider slows down in the middle of a run (issue 12).

One platform (openai) paced at ``rpm`` with nothing else configured (``max_concurrency = "auto"``).
The simulator answers with lognormal latency (mean 1.5 s, sigma 0.5); ``--step-at`` seconds into the
run it is reconfigured to a mean of 6 s.  Every 0.5 s the script samples the simulator's answers
(rate) and its requests in flight, and reads the in-flight limit the tool logs (``-v --log-format json``,
event ``in_flight_limit``).  Results in ``bench/results/latency_step.json`` and a plot
``bench/results/latency_step.png`` (matplotlib, the ``bench`` extra).

    .venv/bin/python bench/latency_step.py [--rpm 1000] [--n 1500] [--step-at 40]

What it shows: the rate holds (calls per second before vs after the step) and how many seconds after
the step the in-flight limit reaches rate x 6 s (what the new latency needs on average).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

BEFORE_S, AFTER_S, SIGMA = 1.5, 6.0, 0.5
_LIMIT = re.compile(r"in-flight limit (\d+)")


def sim_config(rpm: float, latency: float) -> dict[str, Any]:
    return {"profile": "realistic", "seed": 11,
            "platforms": {"openai": {"rpm": rpm, "latency_mean_s": latency, "latency_sigma": SIGMA}}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rpm", type=float, default=1000.0)
    ap.add_argument("--n", type=int, default=1500, help="prompts (openai only)")
    ap.add_argument("--step-at", type=float, default=40.0, help="seconds after the first request")
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator(config=sim_config(args.rpm, BEFORE_S))
    work = Path(tempfile.mkdtemp(prefix="bench-step-"))
    url, dbname = c.fresh_database("step")
    try:
        cfg = c.toml_config(work / "config.toml", {}, {"openai": {"rpm": args.rpm}})
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, args.n, work)
        cmd = c.analyze_cmd("-v", "--log-format", "json", "run", "--key", "bench-step", "--platform", "openai",
                            "--json")
        err_path = work / "stderr.jsonl"
        t_start = time.time()
        with open(err_path, "w") as err_f:
            proc = subprocess.Popen(cmd, cwd=c.ROOT, env=env, stdout=subprocess.PIPE, stderr=err_f, text=True)
            samples: list[dict[str, Any]] = []
            stepped: list[float] = []
            done = threading.Event()

            def poll() -> None:
                first: float | None = None
                while not done.is_set():
                    try:
                        st = sim.stats()
                    except Exception:
                        time.sleep(0.5)
                        continue
                    now = time.time()
                    o = st["platforms"]["openai"]
                    samples.append({"t": now, "ok": int(o.get("ok", 0)),
                                    "in_flight": int(st.get("in_flight", {}).get("openai", 0)),
                                    "429": int(o.get("429", 0)), "requests": int(o.get("requests", 0))})
                    first = first or st.get("first_request_at")
                    if first and not stepped and now - first >= args.step_at:
                        c.put_sim_config(sim, sim_config(args.rpm, AFTER_S))
                        stepped.append(time.time())
                        c.say(f"latency step to {AFTER_S} s at t={now - first:.1f}s")
                    done.wait(0.5)

            th = threading.Thread(target=poll, daemon=True)
            th.start()
            out, _ = proc.communicate()
            done.set()
            th.join()
        summary = json.loads(out) if out.strip() else {}
        first_at = sim.stats().get("first_request_at") or t_start
        limits: list[tuple[float, int]] = []
        for line in err_path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            mm = _LIMIT.search(rec.get("message", ""))
            if mm and rec.get("platform") == "openai":
                ts = datetime.fromisoformat(rec["time"]).timestamp()
                limits.append((ts - first_at, int(mm.group(1))))
        series = [{"t": round(s["t"] - first_at, 2), "ok": s["ok"], "in_flight": s["in_flight"], "429": s["429"],
                   "requests": s["requests"]} for s in samples]
        step_t = stepped[0] - first_at if stepped else None
        res = analyse(series, limits, step_t, args.rpm)
        res.update({"n_prompts": args.n, "rpm": args.rpm, "latency_before_s": BEFORE_S, "latency_after_s": AFTER_S,
                    "exit_code": proc.returncode, "duration_s": summary.get("duration_s"),
                    "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                    "limits_in_force": summary.get("platforms", {}).get("openai", {}).get("limits")})
        c.say(json.dumps({k: v for k, v in res.items() if k not in ("series", "limit_changes")}))
        c.save("latency_step", {"benchmark": "latency_step", "machine": m, "result": res,
                                "series": series, "limit_changes": limits})
        plot(series, limits, step_t, args.rpm, c.RESULTS / "latency_step.png")
    finally:
        sim.stop()
        c.drop_database(dbname)


def _rate(series: list[dict[str, Any]], t0: float, t1: float, key: str = "ok") -> float | None:
    pts = [s for s in series if t0 <= s["t"] <= t1]
    if len(pts) < 2:
        return None
    return (pts[-1][key] - pts[0][key]) / (pts[-1]["t"] - pts[0]["t"])


def analyse(series: list[dict[str, Any]], limits: list[tuple[float, int]], step_t: float | None,
            rpm: float) -> dict[str, Any]:
    end = series[-1]["t"] if series else 0.0
    out: dict[str, Any] = {"step_at_s": round(step_t, 2) if step_t else None, "target_rate_per_s": round(rpm / 60, 3)}
    if step_t is None:
        return out
    # Steady states: after the first latencies are in, before the step; after the slow answers are back.
    out["rate_before_per_s"] = _rate(series, 10.0, step_t)
    last_answers = max((s["t"] for s in series if s["in_flight"] > 0), default=end)
    out["rate_after_per_s"] = _rate(series, step_t + 2 * AFTER_S, last_answers - 2 * AFTER_S)
    # What the tool sends (the answers lag it by the latency): the seconds just after the step matter.
    last_sent = max((s["t"] for s in series if s["requests"] < series[-1]["requests"]), default=end)
    out["sent_per_s_before"] = _rate(series, 10.0, step_t, "requests")
    out["sent_per_s_first_10s_after"] = _rate(series, step_t, step_t + 10.0, "requests")
    out["sent_per_s_after"] = _rate(series, step_t, last_sent, "requests")
    need = rpm / 60 * AFTER_S
    reached = next((t for t, lim in limits if t >= step_t and lim >= need), None)
    out["limit_needed_after_step"] = round(need, 1)
    out["limit_reaches_need_after_s"] = round(reached - step_t, 2) if reached is not None else None
    before = [lim for t, lim in limits if t < step_t]
    out["limit_before_step"] = before[-1] if before else None
    out["limit_max_after_step"] = max((lim for t, lim in limits if t >= step_t), default=None)
    out["in_flight_max"] = max((s["in_flight"] for s in series), default=0)
    out["sim_429"] = series[-1]["429"] if series else 0
    for k in ("rate_before_per_s", "rate_after_per_s", "sent_per_s_before", "sent_per_s_first_10s_after",
              "sent_per_s_after"):
        if out.get(k) is not None:
            out[k] = round(out[k], 3)
    return out


def plot(series: list[dict[str, Any]], limits: list[tuple[float, int]], step_t: float | None, rpm: float,
         path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ts = [s["t"] for s in series]

    def smoothed(key: str) -> list[float]:
        """Per-second rate of a counter, averaged over 2 s."""
        rate = [0.0] + [(b[key] - a[key]) / max(1e-6, b["t"] - a["t"])
                        for a, b in zip(series, series[1:], strict=False)]
        out = []
        for i, t in enumerate(ts):
            j = i
            while j > 0 and t - ts[j - 1] <= 2.0:
                j -= 1
            window = rate[j:i + 1]
            out.append(sum(window) / len(window))
        return out

    fig, ax1 = plt.subplots(figsize=(10, 5))
    ax1.plot(ts, smoothed("requests"), color="tab:green", label="requests sent per second (2 s average)")
    ax1.plot(ts, smoothed("ok"), color="tab:blue", alpha=0.6, label="answers per second (2 s average)")
    ax1.axhline(rpm / 60, color="tab:blue", linestyle=":", label=f"rpm / 60 = {rpm / 60:.1f}/s")
    ax1.set_xlabel("seconds since the first request")
    ax1.set_ylabel("per second")
    ax2 = ax1.twinx()
    ax2.plot(ts, [s["in_flight"] for s in series], color="tab:orange", label="requests in flight (simulator)")
    if limits:
        lt = [0.0] + [t for t, _ in limits] + [ts[-1] if ts else 0.0]
        lv = [limits[0][1]] + [v for _, v in limits] + [limits[-1][1]]
        ax2.step(lt, lv, where="post", color="tab:red", label="in-flight limit (tool)")
    ax2.set_ylabel("calls in flight")
    if step_t is not None:
        ax1.axvline(step_t, color="grey", linestyle="--", label=f"latency {BEFORE_S} s -> {AFTER_S} s")
    lines = ax1.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax1.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper left", fontsize=8)
    ax1.set_title("Latency step mid-run: rate and in-flight limit (max_concurrency = \"auto\")")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    c.say(f"wrote {path.relative_to(c.ROOT)}")


if __name__ == "__main__":
    main()
