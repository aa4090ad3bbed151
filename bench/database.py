"""Benchmark 5: what the database costs per provider call.

`analyze run` of N prompts x 4 platforms against the simulator's "fast" profile, on a fresh
database, twice:

1. direct to Postgres: rows written per second (pg_stat_database tup_inserted + tup_updated +
   tup_deleted deltas over the run's duration) and transactions per call (xact_commit delta / calls);
2. through a counting TCP proxy between the tool and Postgres, which reads the frontend protocol:
   round trips per call (every time the client sends after the server has answered: a turn where the
   client waits for the network), statements per call (Query + Execute messages) and Sync points.
   The proxy slows the run, so only its counts are used.

Why not pg_stat_statements: it needs shared_preload_libraries and a server restart, which a shared
server does not allow; and it counts statements, not round trips (a pipeline sends several statements
in one).  log_min_duration_statement = 0 would perturb the run it measures.

    .venv/bin/python bench/database.py [--n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
import overhead as ov


class CountingProxy:
    """Forwards TCP to Postgres; counts frontend messages and client turns (round trips)."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int = 5432) -> None:
        self.up = (upstream_host, upstream_port)
        self.msgs: Counter[str] = Counter()
        self.round_trips = 0
        self.connections = 0
        self.setup_round_trips = 0
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def start() -> None:
            server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def reset(self) -> None:
        self.msgs.clear()
        self.round_trips = self.connections = self.setup_round_trips = 0

    async def _client(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection(*self.up)
        self.connections += 1
        state = {"server_spoke": True, "started": False}
        buf = bytearray()

        def parse() -> None:
            nonlocal buf
            while True:
                if not state["started"]:  # untyped: SSLRequest / GSSENCRequest / StartupMessage
                    if len(buf) < 8:
                        return
                    (n,) = struct.unpack("!I", buf[:4])
                    if len(buf) < n:
                        return
                    code = struct.unpack("!I", buf[4:8])[0]
                    if code not in (80877103, 80877104):  # not SSL/GSS negotiation: the startup message
                        state["started"] = True
                    del buf[:n]
                    continue
                if len(buf) < 5:
                    return
                (n,) = struct.unpack("!I", buf[1:5])
                if len(buf) < 1 + n:
                    return
                self.msgs[chr(buf[0])] += 1
                del buf[: 1 + n]

        async def up() -> None:
            while data := await cr.read(65536):
                if state["server_spoke"]:
                    if state["started"]:
                        self.round_trips += 1
                    else:
                        self.setup_round_trips += 1
                    state["server_spoke"] = False
                buf.extend(data)
                parse()
                sw.write(data)
                await sw.drain()
            sw.close()

        async def down() -> None:
            while data := await sr.read(65536):
                state["server_spoke"] = True
                cw.write(data)
                await cw.drain()
            cw.close()

        await asyncio.gather(up(), down(), return_exceptions=True)


def run(sim: c.Simulator, n: int, concurrency: int, proxy: CountingProxy | None) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-db-"))
    url, dbname = c.fresh_database("db")
    try:
        cfg = c.toml_config(work / "config.toml", {}, ov.platforms_cfg(concurrency))
        env = c.base_env(sim, url, cfg, work / "home")
        c.import_prompts(env, n, work)
        if proxy is not None:
            proxy.reset()
            env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{proxy.port}/{dbname}?sslmode=disable"
        cmd = c.analyze_cmd("run", "--key", "bench-db", "--json")
        c.say(f"running: {' '.join(cmd[1:])}  (N={n}, {'through the counting proxy' if proxy else 'direct'})")
        db0 = c.db_counters(url)
        r = c.run_child(cmd, env, dbname=dbname)
        db1 = c.db_counters(url)
        if r.summary is None:
            raise RuntimeError(f"analyze run failed (exit {r.returncode}): {r.stderr_tail}")
        per = c.summary_calls(r.summary)
        calls = sum(v["calls"] for v in per.values())
        dur = float(r.summary["duration_s"])
        d = {k: db1[k] - db0[k] for k in db0}
        rows = d["tup_inserted"] + d["tup_updated"] + d["tup_deleted"]
        out: dict[str, Any] = {
            "calls": calls, "duration_s": dur, "calls_per_s": round(calls / dur, 1),
            "rows_inserted": d["tup_inserted"], "rows_updated": d["tup_updated"], "rows_deleted": d["tup_deleted"],
            "rows_written": rows, "rows_written_per_s": round(rows / dur, 1),
            "rows_written_per_call": round(rows / calls, 2),
            "transactions": d["xact_commit"], "rollbacks": d["xact_rollback"],
            "transactions_per_call": round(d["xact_commit"] / calls, 3),
        }
        if proxy is not None:
            m = dict(proxy.msgs)
            statements = m.get("Q", 0) + m.get("E", 0)
            out.update({
                "proxy": {"connections": proxy.connections, "round_trips": proxy.round_trips,
                          "setup_round_trips": proxy.setup_round_trips, "messages": m},
                "round_trips_per_call": round(proxy.round_trips / calls, 3),
                "statements_per_call": round(statements / calls, 3),
                "syncs_per_call": round((m.get("S", 0) + m.get("Q", 0)) / calls, 3),
            })
        return out
    finally:
        c.drop_database(dbname)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    m = c.machine()
    c.print_machine(m)
    sim = c.Simulator("--profile", "fast")
    proxy = CountingProxy()
    try:
        direct = run(sim, args.n, args.concurrency, None)
        counted = run(sim, args.n, args.concurrency, proxy)
    finally:
        sim.stop()
    c.say(f"direct: {direct['rows_written_per_s']:.0f} rows/s ({direct['rows_written_per_call']} rows/call), "
          f"{direct['transactions_per_call']} transactions/call; through proxy: "
          f"{counted['round_trips_per_call']} round trips/call, {counted['statements_per_call']} statements/call")
    c.save("database", {"benchmark": "database", "machine": m,
                        "result": {"n_prompts": args.n, "direct": direct, "counted": counted}})


if __name__ == "__main__":
    main()
