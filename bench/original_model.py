"""A small stand-alone model of the original service's scheduling, for benchmark 2.

The original service ran 5 prompts at a time (an asyncio semaphore), each prompt asking its 4
platforms together and waiting for all of them before the slot was freed, with an in-memory
per-platform limiter that remembered the timestamps of the last minute's calls.  This model makes
the same SDK calls as prompt-analyzer (through its provider modules, so request and parsing are
identical) against the same simulator, with no database.

    .venv/bin/python bench/original_model.py PROMPTS.csv [--slots 5]

Reads the platforms' keys, base URLs and the TOML config (rpm, model, ...) from the environment
like `analyze` does, and prints one JSON object: duration, calls, 429s, retries per platform.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import json
import sys
import time
from typing import Any

from prompt_analyzer.config import PLATFORMS, load_settings
from prompt_analyzer.providers import ProviderError, RateLimited, make_provider


class TimestampLimiter:
    """The original limiter: at most ``rpm`` call timestamps within the last 60 seconds."""

    def __init__(self, rpm: float) -> None:
        self.rpm = int(rpm)
        self.stamps: collections.deque[float] = collections.deque()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                while self.stamps and now - self.stamps[0] >= 60.0:
                    self.stamps.popleft()
                if len(self.stamps) < self.rpm:
                    self.stamps.append(now)
                    return
                await asyncio.sleep(60.0 - (now - self.stamps[0]))


async def main_async(prompts: list[str], slots: int, max_attempts: int) -> dict[str, Any]:
    settings = load_settings()
    names = [p for p in PLATFORMS if settings.platform(p).configured and settings.platform(p).enabled]
    providers = {p: make_provider(settings.platform(p), secrets=settings.secrets()) for p in names}
    limiters = {p: TimestampLimiter(settings.platform(p).rpm) for p in names}
    stats = {p: {"calls": 0, "success": 0, "error": 0, "rate_limited": 0, "retries": 0} for p in names}
    sem = asyncio.Semaphore(slots)

    async def ask(p: str, text: str) -> None:
        st = stats[p]
        for attempt in range(1, max_attempts + 1):
            await limiters[p].acquire()
            st["calls"] += 1
            try:
                await providers[p].ask(text)
                st["success"] += 1
                return
            except RateLimited as e:
                st["rate_limited"] += 1
                if attempt == max_attempts:
                    break
                st["retries"] += 1
                await asyncio.sleep(e.retry_after if e.retry_after is not None else 2.0**attempt)
            except ProviderError as e:
                if not e.retryable or attempt == max_attempts:
                    break
                st["retries"] += 1
                await asyncio.sleep(2.0**attempt)
        st["error"] += 1

    async def one_prompt(text: str) -> None:
        try:
            await asyncio.gather(*(ask(p, text) for p in names))
        finally:
            sem.release()

    t0 = time.monotonic()
    tasks = []
    for text in prompts:
        await sem.acquire()
        tasks.append(asyncio.create_task(one_prompt(text)))
    await asyncio.gather(*tasks)
    duration = time.monotonic() - t0
    for prov in providers.values():
        await prov.aclose()
    return {"duration_s": round(duration, 3), "slots": slots, "prompts": len(prompts), "platforms": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prompts_csv", help="CSV with a prompt_text column (as `analyze prompts import` takes)")
    ap.add_argument("--slots", type=int, default=5, help="prompts in flight (the original: 5)")
    ap.add_argument("--max-attempts", type=int, default=4)
    args = ap.parse_args()
    with open(args.prompts_csv, newline="", encoding="utf-8") as f:
        prompts = [row["prompt_text"] for row in csv.DictReader(f)]
    out = asyncio.run(main_async(prompts, args.slots, args.max_attempts))
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
