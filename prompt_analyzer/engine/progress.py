"""What a run has done so far, per platform: the live display, the summary and the metrics read it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal

from ..db import BatchRow


@dataclass
class PlatformProgress:
    total: int = 0  # pairs of the batch on this platform
    done_before: int = 0  # succeeded in an earlier run
    success: int = 0
    error: int = 0
    in_flight: int = 0
    calls: int = 0
    rate_limited: int = 0
    retries: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    breaker: str | None = None

    @property
    def finished(self) -> int:
        return self.done_before + self.success + self.error


@dataclass
class Progress:
    platforms: dict[str, PlatformProgress]
    started: float = field(default_factory=time.monotonic)
    stopping: str | None = None

    @property
    def total(self) -> int:
        return sum(p.total for p in self.platforms.values())

    @property
    def finished(self) -> int:
        return sum(p.finished for p in self.platforms.values())


@dataclass
class Outcome:
    batch: BatchRow
    progress: Progress
    interrupted_by: str | None = None  # "SIGINT" / "SIGTERM"
    last: bool = True  # this process finished the batch (False: other workers were still on it)

    @property
    def status(self) -> str:
        return str(self.batch.status)
