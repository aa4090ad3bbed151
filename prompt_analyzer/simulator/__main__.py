"""``python -m prompt_analyzer.simulator``: run the provider simulator until SIGTERM/SIGINT.

Prints exactly one line, ``simulator listening on http://HOST:PORT``, once it accepts connections, so a
parent process (``analyze demo``, benchmarks, tests) can wait for it and read the port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from .config import PROFILES, SIM_PLATFORMS, SimulatorConfig, SimulatorConfigError
from .server import start_simulator


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or name not in SIM_PLATFORMS:
            raise SimulatorConfigError(f"{flag} {item!r}: expected PLATFORM=VALUE, PLATFORM one of {SIM_PLATFORMS}")
        out[name] = value
    return out


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    """Profile, then the JSON file, then the per-flag overrides."""
    raw: dict[str, Any] = {}
    if args.config:
        raw = json.loads(Path(args.config).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise SimulatorConfigError(f"{args.config}: must hold a JSON object")
    if args.profile:
        raw["profile"] = args.profile
    config = SimulatorConfig.from_dict(raw)
    if args.seed is not None:
        config = replace(config, seed=args.seed)
    if args.answer_bytes is not None:
        config = replace(config, answer_bytes=args.answer_bytes)
    for name, value in _pairs(args.rpm, "--rpm").items():
        config = config.with_platform(name, rpm=None if value in ("", "none", "0") else float(value))
    for name, value in _pairs(args.tpm, "--tpm").items():
        config = config.with_platform(name, tpm=None if value in ("", "none", "0") else int(value))
    for name, value in _pairs(args.latency, "--latency").items():
        config = config.with_platform(name, latency_mean_s=float(value))
    for name, value in _pairs(args.fault_rate, "--fault-rate").items():
        config = config.with_platform(name, fault_rate=float(value))
    return config


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m prompt_analyzer.simulator", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (see --port-file)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="defaults: realistic")
    p.add_argument("--config", help="JSON file in the /_sim/config format")
    p.add_argument("--rpm", action="append", default=[], metavar="PLATFORM=N", help="0 or none: unlimited")
    p.add_argument("--tpm", action="append", default=[], metavar="PLATFORM=N")
    p.add_argument("--latency", action="append", default=[], metavar="PLATFORM=SECONDS", help="mean latency")
    p.add_argument("--fault-rate", action="append", default=[], metavar="PLATFORM=P")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--answer-bytes", type=int, default=None)
    p.add_argument("--port-file", help="write the bound port here once listening")
    return p


def _write_port_file(path: str, port: int) -> None:
    """Write then rename, so a reader polling the file never sees a half-written port."""
    tmp = Path(path + ".tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    tmp.replace(path)


async def _run(args: argparse.Namespace, config: SimulatorConfig) -> None:
    sim = await start_simulator(config, host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if args.port_file:
        _write_port_file(args.port_file, sim.port)
    print(f"simulator listening on {sim.url}", flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = build_config(args)
    except (OSError, ValueError) as e:  # SimulatorConfigError and JSON errors are ValueErrors
        print(f"simulator: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run(args, config))
    except OSError as e:
        print(f"simulator: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
