"""A worker process stand-in for tests/engine/test_shared_limits.py: acquires a platform's shared rate
COUNT times and prints, as JSON, the wall-clock moment of each grant.

    python -m tests.engine.limits_child REDIS_URL PREFIX RPM COUNT WORKERS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from prompt_analyzer.config import PlatformSettings, Secret
from prompt_analyzer.engine.shared_limits import Coordination


async def main(url: str, prefix: str, rpm: float, count: int, workers: int) -> None:
    coord = Coordination(url or None, workers=workers, prefix=prefix)
    await coord.connect()
    settings = PlatformSettings(name="openai", rpm=rpm, api_key=Secret("sk-test-child"), base_url="http://sim")
    rate, _ = coord.limits(settings)
    print("ready", flush=True)
    sys.stdin.readline()  # every child starts acquiring at the same moment
    grants = []
    for _ in range(count):
        await rate.acquire()
        grants.append(time.time())
    await coord.aclose()
    print(json.dumps({"grants": grants, "shared": not coord.fallback}), flush=True)


if __name__ == "__main__":
    u, p, r, c, w = sys.argv[1:6]
    asyncio.run(main(u, p, float(r), int(c), int(w)))
