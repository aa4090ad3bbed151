"""The bare loop of benchmark 3: the same SDK calls as `analyze run`, through the same provider
modules (``prompt_analyzer.providers.make_provider``: request, SDK parsing, citations, cost), with the
same per-platform concurrency, and nothing else: no database, no pacing, no retries.

    .venv/bin/python bench/bare_loop.py PROMPTS.csv

Reads keys, base URLs and the TOML config (max_concurrency, model, ...) from the environment like
`analyze` does; prints one JSON object (duration, calls per platform).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import time
from typing import Any

from prompt_analyzer.config import PLATFORMS, load_settings
from prompt_analyzer.providers import ProviderError, make_provider


async def main_async(prompts: list[str]) -> dict[str, Any]:
    settings = load_settings()
    names = [p for p in PLATFORMS if settings.platform(p).configured and settings.platform(p).enabled]
    stats = {p: {"calls": 0, "success": 0, "error": 0} for p in names}
    providers = {p: make_provider(settings.platform(p), secrets=settings.secrets()) for p in names}

    async def lane(p: str) -> None:
        it = iter(prompts)
        st = stats[p]

        async def worker() -> None:
            for text in it:  # one shared iterator: each prompt once per platform
                st["calls"] += 1
                try:
                    await providers[p].ask(text)
                    st["success"] += 1
                except ProviderError:
                    st["error"] += 1

        await asyncio.gather(*(worker() for _ in range(settings.platform(p).max_concurrency or 50)))

    t0 = time.monotonic()
    await asyncio.gather(*(lane(p) for p in names))
    duration = time.monotonic() - t0
    for prov in providers.values():
        await prov.aclose()
    return {"duration_s": round(duration, 3), "prompts": len(prompts), "platforms": stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prompts_csv")
    args = ap.parse_args()
    with open(args.prompts_csv, newline="", encoding="utf-8") as f:
        prompts = [row["prompt_text"] for row in csv.DictReader(f)]
    json.dump(asyncio.run(main_async(prompts)), sys.stdout)
    print()


if __name__ == "__main__":
    main()
