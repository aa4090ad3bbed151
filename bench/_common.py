"""Shared plumbing for the benchmark scripts: machine facts, the simulator process, a fresh database,
prompts, running ``analyze`` as a child process with exact CPU and peak-memory figures, and results.

Nothing here is imported by the project; the scripts are run from the repository root with the
project's virtualenv, e.g. ``.venv/bin/python bench/rate_bound.py``.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
ADMIN_URL = os.environ.get("BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PLATFORMS = ("openai", "gemini", "claude", "perplexity")
KEY_ENV = {"openai": "OPENAI_API_KEY", "claude": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
           "perplexity": "PERPLEXITY_API_KEY"}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def code_version() -> str:
    """The commit measured, with "+dirty" when prompt_analyzer/ has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "prompt_analyzer"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def machine(db_url: str = ADMIN_URL) -> dict[str, Any]:
    try:
        with psycopg.connect(db_url, autocommit=True) as c:
            pg = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    except Exception as e:
        pg = f"unavailable: {e}"
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "postgresql": pg,
        "os": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],  # 1, 5, 15 min: the machine is shared
        "code": code_version(),
        "command": " ".join(shlex.quote(a) for a in [Path(PY).name, *sys.argv]),
    }


def print_machine(m: Mapping[str, Any]) -> None:
    say(f"machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, load {m['loadavg_at_start']}, code {m.get('code')}")
    say(f"command: {m['command']}")


# ----------------------------------------------------------------------------- simulator


class Simulator:
    """``python -m prompt_analyzer.simulator`` as a separate process on a free port."""

    def __init__(self, *args: str, config: Mapping[str, Any] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-sim-"))
        port_file = self.dir / "port"
        cmd = [PY, "-m", "prompt_analyzer.simulator", "--port", "0", "--port-file", str(port_file), *args]
        if config is not None:
            cfg = self.dir / "sim.json"
            cfg.write_text(json.dumps(config))
            cmd += ["--config", str(cfg)]
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.dir / "log", "w"))
        deadline = time.monotonic() + 30
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"simulator did not start: {(self.dir / 'log').read_text()[-2000:]}")
            time.sleep(0.05)
        self.port = int(port_file.read_text().strip())
        self.root = f"http://127.0.0.1:{self.port}"
        self.ps = psutil.Process(self.proc.pid)

    def env(self) -> dict[str, str]:
        r = self.root
        env = {"OPENAI_BASE_URL": f"{r}/openai/v1", "ANTHROPIC_BASE_URL": f"{r}/anthropic",
               "GOOGLE_GEMINI_BASE_URL": f"{r}/gemini/", "PERPLEXITY_BASE_URL": f"{r}/perplexity"}
        env.update({k: "bench-key-" + p for p, k in KEY_ENV.items()})
        return env

    def stats(self) -> dict[str, Any]:
        import urllib.request

        with urllib.request.urlopen(f"{self.root}/_sim/stats", timeout=10) as r:
            return json.loads(r.read())

    def reset(self) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.root}/_sim/reset", method="POST")
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except Exception:
            pass

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def put_sim_config(sim: Simulator, config: Mapping[str, Any]) -> None:
    """Replace the running simulator's configuration (``PUT /_sim/config``), e.g. a latency step."""
    import urllib.request

    req = urllib.request.Request(f"{sim.root}/_sim/config", data=json.dumps(config).encode(), method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def sim_counts(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Per platform request/ok/429 counts between two /_sim/stats snapshots."""
    out: dict[str, dict[str, int]] = {}
    for p, a in after["platforms"].items():
        b = before["platforms"].get(p, {})
        out[p] = {k: int(v) - int(b.get(k, 0)) for k, v in a.items() if isinstance(v, int)}
    return out


# ----------------------------------------------------------------------------- database


def fresh_database(tag: str) -> tuple[str, str]:
    """(url, name) of a brand-new database on the local server, schema migrated by ``analyze db migrate``."""
    name = f"bench_{tag}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    subprocess.run([PY, "-m", "prompt_analyzer", "db", "migrate"], cwd=ROOT, check=True,
                   env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return url, name


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def db_counters(url: str) -> dict[str, int]:
    """pg_stat_database's transaction and row counters for the benchmark's own database."""
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
        row = c.execute(
            """SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, blks_hit, blks_read
               FROM pg_stat_database WHERE datname = current_database()"""
        ).fetchone()
    keys = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted", "blks_hit", "blks_read")
    return dict(zip(keys, (int(v) for v in row), strict=True))  # type: ignore[arg-type]


def write_prompts(path: Path, n: int, *, projects: int = 10, seed: int = 1) -> Path:
    import random

    rng = random.Random(seed)
    pids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(projects)]
    subjects = ["CRM software", "running shoes", "project management tools", "electric cars", "coffee grinders",
                "password managers", "cloud hosting", "note-taking apps", "budget airlines", "standing desks"]
    with path.open("w") as f:
        f.write("project_id,prompt_text\n")
        for i in range(n):
            s = subjects[i % len(subjects)]
            f.write(f"{pids[i % projects]},\"What are the best {s} for a team of {i % 97 + 2} in 2025? (#{i})\"\n")
    return path


def import_prompts(env: Mapping[str, str], n: int, workdir: Path) -> float:
    csv = write_prompts(workdir / "prompts.csv", n)
    t0 = time.monotonic()
    subprocess.run([PY, "-m", "prompt_analyzer", "prompts", "import", str(csv)], cwd=ROOT, check=True,
                   env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.monotonic() - t0


# ----------------------------------------------------------------------------- config


def toml_config(path: Path, run: Mapping[str, Any], platforms: Mapping[str, Mapping[str, Any]],
                database: Mapping[str, Any] | None = None) -> Path:
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v)

    lines = ["[run]"] + [f"{k} = {val(v)}" for k, v in run.items()]
    if database:
        lines += ["", "[database]"] + [f"{k} = {val(v)}" for k, v in database.items()]
    for name, section in platforms.items():
        lines += ["", f"[platforms.{name}]"] + [f"{k} = {val(v)}" for k, v in section.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------- running analyze


@dataclass
class ChildRun:
    cmd: list[str]
    returncode: int
    wall_s: float
    cpu_user_s: float
    cpu_sys_s: float
    maxrss_mb: float  # from wait4's rusage: the child's peak resident set
    stdout: str
    stderr_tail: str
    samples: list[tuple[float, float]] = field(default_factory=list)  # (t, rss MB)
    started_epoch: float = 0.0  # time.time() just before the child was started (first-request latency)
    pg_cpu_s: float = 0.0  # our database's backends, last sample before exit
    system_busy_s: float = 0.0  # every process on the machine, from /proc/stat
    summary: dict[str, Any] | None = None
    cpu_unreaped_s: float = 0.0  # descendants wait4() does not count (last sample each; a fork server's children)

    @property
    def cpu_s(self) -> float:
        return self.cpu_user_s + self.cpu_sys_s + self.cpu_unreaped_s


def _busy_jiffies() -> float:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    v = [int(x) for x in parts]
    idle = v[3] + v[4]  # idle + iowait
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _pg_backends(dbname: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "name"]):
        try:
            cl = " ".join(p.info["cmdline"] or [])
        except (psutil.Error, TypeError):
            continue
        if cl.startswith("postgres: ") and f" {dbname} " in cl:
            out.append(p)
    return out


def run_child(cmd: Sequence[str], env: Mapping[str, str], *, dbname: str | None = None,
              sample_every: float = 0.25, parse_json: bool = True, stop_after_s: float | None = None) -> ChildRun:
    """Run ``cmd``; exact CPU and peak RSS from wait4(), RSS samples and our Postgres backends' CPU by polling."""
    out_f = tempfile.TemporaryFile("w+")
    err_f = tempfile.TemporaryFile("w+")
    busy0 = _busy_jiffies()
    t0 = time.monotonic()
    started_epoch = time.time()
    proc = subprocess.Popen(list(cmd), cwd=ROOT, env=dict(env), stdout=out_f, stderr=err_f)
    samples: list[tuple[float, float]] = []
    pg_cpu: dict[int, float] = {}
    pg_start: dict[int, float] = {}
    # Descendants' own CPU (last sample): `run --workers N`'s workers are children of a fork server, not
    # of the run, so wait4() does not count them.
    tree_cpu: dict[int, float] = {}
    tree_parent: dict[int, int] = {}
    done = threading.Event()

    def poll() -> None:
        try:
            me = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not done.is_set():
            try:
                samples.append((round(time.monotonic() - t0, 2), me.memory_info().rss / 2**20))
                kids = me.children(recursive=True)
            except psutil.Error:
                break
            for kid in kids:
                try:
                    t = kid.cpu_times()
                    tree_cpu[kid.pid] = t.user + t.system
                    tree_parent.setdefault(kid.pid, kid.ppid())
                except psutil.Error:
                    pass
            if dbname:
                for b in _pg_backends(dbname):
                    try:
                        t = b.cpu_times()
                        pg_cpu[b.pid] = t.user + t.system
                        pg_start.setdefault(b.pid, pg_cpu[b.pid] if time.monotonic() - t0 > 1 else 0.0)
                    except psutil.Error:
                        pass
            done.wait(sample_every)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    if stop_after_s is not None:  # a clean stop (SIGINT): calls in flight finish, the batch is resumable
        timer = threading.Timer(stop_after_s, lambda: proc.poll() is None and proc.send_signal(signal.SIGINT))
        timer.daemon = True
        timer.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    done.set()
    th.join()
    # wait4() counted the children the run reaped itself; add the descendants it did not (a direct child
    # still alive now was not reaped by it, e.g. a fork server; a grandchild never is).
    unreaped = sum(cpu for pid, cpu in tree_cpu.items()
                   if tree_parent[pid] != proc.pid or psutil.pid_exists(pid))
    proc.returncode = os.waitstatus_to_exitcode(status)
    out_f.seek(0)
    err_f.seek(0)
    stdout = out_f.read()
    stderr = err_f.read()
    r = ChildRun(
        cmd=list(cmd), returncode=proc.returncode, wall_s=wall, cpu_user_s=ru.ru_utime, cpu_sys_s=ru.ru_stime,
        cpu_unreaped_s=unreaped,
        maxrss_mb=ru.ru_maxrss / 1024, stdout=stdout, stderr_tail=stderr[-3000:], samples=samples,
        started_epoch=started_epoch,
        pg_cpu_s=sum(pg_cpu[p] - pg_start.get(p, 0.0) for p in pg_cpu),
        system_busy_s=_busy_jiffies() - busy0,
    )
    if parse_json and stdout.strip():
        try:
            r.summary = json.loads(stdout)
        except json.JSONDecodeError:
            pass
    return r


def analyze_cmd(*args: str) -> list[str]:
    return [PY, "-m", "prompt_analyzer", *args]


def summary_calls(summary: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    out = {}
    for name, p in summary.get("platforms", {}).items():
        run = p.get("run", {}) or {}
        out[name] = {"success": int(p.get("success", 0) or 0), "error": int(p.get("error", 0) or 0),
                     "calls": int(run.get("calls", 0) or 0), "rate_limited": int(run.get("rate_limited", 0) or 0),
                     "retries": int(run.get("retries", 0) or 0)}
    return out


# ----------------------------------------------------------------------------- results


def save(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    say(f"wrote {path.relative_to(ROOT)}")
    return path


def base_env(sim: Simulator, db_url: str, config: Path | None, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and k not in ("DATABASE_URL",)}
    env.update(sim.env())
    env["DATABASE_URL"] = db_url
    env["PROMPT_ANALYZER_HOME"] = str(home)
    if config is not None:
        env["PROMPT_ANALYZER_CONFIG"] = str(config)
    else:
        env.pop("PROMPT_ANALYZER_CONFIG", None)
    return env
