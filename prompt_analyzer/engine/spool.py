"""A local spool for answers the database could not take.

Every answer is paid for.  When the database stays down past ``run.db_retry_s``, the answers already
received are appended here (JSON Lines, fsynced) instead of being dropped, and the next run replays
them into Postgres before it does anything else.  Replaying is idempotent: an answer is written to its
own ``ai_responses`` row by id, and only if that pair has not succeeded since.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import uuid
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..db import CitationRow, Store, SuccessRecord

SPOOL_NAME = "spool.jsonl"


def _encode(rec: SuccessRecord) -> str:
    d = asdict(rec)
    d["response_id"] = str(rec.response_id)
    d["job_id"] = str(rec.job_id)
    d["cost"] = None if rec.cost is None else str(rec.cost)
    return json.dumps(d, default=str, ensure_ascii=False)


def _decode(line: str) -> SuccessRecord:
    d: dict[str, Any] = json.loads(line)
    return SuccessRecord(
        response_id=uuid.UUID(d["response_id"]),
        job_id=uuid.UUID(d["job_id"]),
        model_version=d["model_version"],
        response_text=d["response_text"],
        input_tokens=d["input_tokens"],
        output_tokens=d["output_tokens"],
        total_tokens=d["total_tokens"],
        cost=None if d["cost"] is None else Decimal(d["cost"]),
        execution_time_ms=d["execution_time_ms"],
        metadata={**d["metadata"], "replayed_from_spool": True},
        citations=[CitationRow(**c) for c in d["citations"]],
    )


class Spool:
    def __init__(self, home: Path) -> None:
        self.path = home / SPOOL_NAME
        self.count = 0

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, text.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def append(self, rec: SuccessRecord) -> None:
        self._append(_encode(rec) + "\n")
        self.count += 1

    async def replay(self, store: Store) -> int:
        """Write every spooled answer into Postgres, then empty the spool; returns how many were written."""
        if not self.path.exists():
            return 0
        work = self.path.with_name(self.path.name + f".replaying-{uuid.uuid4().hex[:8]}")
        os.replace(self.path, work)  # new appends (another process) go to a fresh file
        lines = work.read_text(encoding="utf-8").splitlines()
        written = 0
        for n, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = _decode(line)
            except (ValueError, KeyError, TypeError):
                # A torn last line from a crash mid-write: keep it aside for inspection, never crash.
                bad = self.path.with_name(f"spool.bad-{uuid.uuid4().hex[:8]}")
                bad.write_text(base64.b64encode(line.encode()).decode() + "\n")
                continue
            try:
                if await store.record_spooled(rec):
                    written += 1
            except Exception:
                # Put back what is left (this line included) so nothing is lost, then give up.
                self._append("\n".join(lines[n:]) + "\n")
                with contextlib.suppress(OSError):
                    work.unlink()
                raise
        work.unlink()
        return written
