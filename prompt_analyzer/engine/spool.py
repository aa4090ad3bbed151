"""A local spool for answers the database could not take.

Every answer is paid for.  When the database stays down past ``run.db_retry_s``, the answers already
received are appended here instead of being dropped, and the next run replays them into Postgres
before it does anything else.  Replaying is idempotent: an answer is written to its own
``ai_responses`` row by id, and only if that pair has not succeeded since.

Several databases, one home
    Runs against different databases (another ``DATABASE_URL``, or the embedded one) share
    ``$PROMPT_ANALYZER_HOME``.  So every spooled answer records the identity of the database it was
    received for (:mod:`prompt_analyzer.db.identity`, read by :meth:`Spool.open` while the database
    is up, since appends happen when it is down), and a replay writes only the answers of the
    database it is connected to.  Answers of other databases are kept, byte for byte, until a run
    connects to their database.

Files under ``$PROMPT_ANALYZER_HOME``
    ``spool.jsonl``
        The spool: one JSON object per line, the answer plus ``"spool_db"`` (the identity key).
        Appends take ``flock`` on the file, write one line and ``fsync``.
    ``spool.jsonl.replaying-<hex>``
        A replay's work file: the replay renames ``spool.jsonl`` to it first (new appends go to a
        fresh ``spool.jsonl``), writes what it can, puts back what must stay, then removes it.  One
        left behind by a replay that died is taken up again by the next replay (replays are
        serialised by ``spool.lock``), so a crash at any moment loses no line; at worst a line is
        seen twice, which the replay folds (identical lines) or finds already written.
    ``spool-quarantine-<digest>.jsonl``
        Answers of *this* database whose row is not in it (deleted since, or a record the database
        refuses): never deleted, moved here with a warning naming the file.  ``<digest>`` is a hash of
        the database identity; each line keeps its ``spool_db``.  Move lines back to ``spool.jsonl``
        to retry them.
    ``spool.bad``
        Lines that are not a record (a line torn by a crash mid-write), base64 of the raw bytes, one a
        line.
    ``spool.lock``
        Held while a replay runs.

Lines written by the previous version (no ``spool_db``)
    They were written to the same ``spool.jsonl``, so they are replayed from there as *unkeyed*
    answers: one whose row is in the connected database is placed there (rows are UUIDs: a row
    with that id exists in one database only); one whose row this database has already written is
    done (dropped, counted as already written); one whose row is not in this database is left in
    ``spool.jsonl`` as it was (it may belong to another database: never quarantined, never
    deleted).

An answer whose row already succeeded since (a later run asked again) is a legitimate skip: it is
counted and logged at info level, not kept.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from ..db import CitationRow, DatabaseError, Store, SuccessRecord
from ..db.identity import DatabaseIdentity, database_identity, digest_of, response_status

log = logging.getLogger("prompt_analyzer.engine")

SPOOL_NAME = "spool.jsonl"
WORK_PREFIX = SPOOL_NAME + ".replaying-"
LOCK_NAME = "spool.lock"
BAD_NAME = "spool.bad"
DB_KEY = "spool_db"


def quarantine_name(identity_key: str) -> str:
    return f"spool-quarantine-{digest_of(identity_key)}.jsonl"


def _encode(rec: SuccessRecord, db: str) -> str:
    d = asdict(rec)
    d["response_id"] = str(rec.response_id)
    d["job_id"] = str(rec.job_id)
    d["cost"] = None if rec.cost is None else str(rec.cost)
    d[DB_KEY] = db
    return json.dumps(d, default=str, ensure_ascii=True)  # ASCII: even a lone surrogate is written


def _decode(d: dict[str, Any]) -> SuccessRecord:
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


def _parse(raw: bytes) -> tuple[str | None, SuccessRecord] | None:
    """(database identity key or None for an unkeyed line, record), or None for a line that is not a record."""
    try:
        d = json.loads(raw.decode("utf-8"))
        if not isinstance(d, dict):
            return None
        db = d.get(DB_KEY)
        if db is not None and not isinstance(db, str):
            return None
        return db, _decode(d)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _append_lines(path: Path, lines: list[bytes]) -> None:
    """Append whole lines under ``flock``, fsynced.

    The file is opened again if a replay renamed it away between our open and our lock, so a line never
    lands in a work file the replay has already read.  A file not ending in a newline (a torn last line)
    gets one first, so the torn bytes never swallow the next record.
    """
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(line.rstrip(b"\n") + b"\n" for line in lines)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)  # RDWR: pread of the last byte
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                continue  # renamed away under us: open the new file
            if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                continue
            prefix = b""
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                prefix = b"\n"
            os.write(fd, prefix + data)
            os.fsync(fd)
            if st.st_size == 0:
                _fsync_dir(path.parent)  # a new file: make its name durable too
            return
        finally:
            os.close(fd)


@dataclass
class ReplayResult:
    """What a replay did, by kind of line."""

    written: int = 0  # answers written into this database
    already_written: int = 0  # their row had succeeded since: nothing to do
    quarantined: int = 0  # this database's answers whose row is not in it (moved to `quarantine`)
    other_databases: Counter[str] = field(default_factory=Counter)  # kept for other databases, by identity
    unkeyed_kept: int = 0  # lines of the previous version whose row is not in this database: kept
    torn: int = 0  # lines that are not a record (moved to spool.bad)
    quarantine: Path | None = None


class SpoolBusy(DatabaseError):
    """Another process holds the spool's replay lock too long (exit 75: try again later)."""


class Spool:
    """The spool of one home, for the database identified by ``identity``.

    ``path`` is the file this run appends to; ``count`` how many answers it appended.
    """

    lock_wait_s = 60.0  # how long a replay waits for another process's replay before leaving it to the next run

    def __init__(self, home: Path, identity: DatabaseIdentity) -> None:
        self.home = home
        self.identity = identity
        self.path = home / SPOOL_NAME
        self.count = 0

    @classmethod
    async def open(cls, home: Path, store: Store) -> Spool:
        """The spool of ``home`` for the database ``store`` is connected to (reads its identity now)."""
        return cls(home, await database_identity(store))

    @property
    def quarantine_path(self) -> Path:
        return self.home / quarantine_name(self.identity.key)

    def append(self, rec: SuccessRecord) -> None:
        _append_lines(self.path, [_encode(rec, self.identity.key).encode("utf-8")])
        self.count += 1

    # ------------------------------------------------------------------------------ replay

    @contextlib.contextmanager
    def _replay_lock(self) -> Iterator[int]:
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            yield fd
        finally:
            os.close(fd)  # releases the flock

    async def _acquire(self, fd: int) -> bool:
        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(0.1)

    def _take_work_files(self) -> list[Path]:
        """Work files left by replays that died, then ``spool.jsonl`` renamed to a new one (replay lock held)."""
        works = sorted(p for p in self.home.glob(WORK_PREFIX + "*") if p.is_file())
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return works
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # an append in progress finishes first
            work = self.home / f"{WORK_PREFIX}{uuid.uuid4().hex[:12]}"
            os.replace(self.path, work)
        finally:
            os.close(fd)
        _fsync_dir(self.home)
        works.append(work)
        return works

    async def replay(self, store: Store) -> ReplayResult:
        """Write this database's spooled answers into it; keep every other line on disk (see the module doc)."""
        result = ReplayResult()
        with self._replay_lock() as lock_fd:
            if not await self._acquire(lock_fd):
                # Going on would ask again pairs whose answers wait in the spool: a temporary failure.
                raise SpoolBusy(f"another process has been replaying {self.path} for {self.lock_wait_s:.0f} s; "
                                "try again once it has finished")
            works = self._take_work_files()
            if not works:
                return result
            lines: list[bytes] = []
            seen: set[bytes] = set()
            for w in works:
                for raw in w.read_bytes().split(b"\n"):
                    if raw.strip() and raw not in seen:  # a line seen twice (crash between put back and unlink)
                        seen.add(raw)
                        lines.append(raw)
            keep: list[bytes] = []
            quarantine: list[bytes] = []
            bad: list[bytes] = []
            i = 0
            try:
                for i, raw in enumerate(lines):  # noqa: B007 - `i` is read after the loop on failure
                    await self._replay_line(store, raw, result, keep, quarantine, bad)
            except BaseException:
                keep.extend(lines[i:])  # this line and the rest stay, nothing is lost; then give up
                self._settle(keep, quarantine, bad, works, result)
                raise
            self._settle(keep, quarantine, bad, works, result)
        self._report(result)
        return result

    async def _replay_line(
        self, store: Store, raw: bytes, result: ReplayResult, keep: list[bytes], quarantine: list[bytes],
        bad: list[bytes],
    ) -> None:
        parsed = _parse(raw)
        if parsed is None:
            bad.append(raw)
            result.torn += 1
            return
        db, rec = parsed
        if db is not None and db != self.identity.key:
            keep.append(raw)
            result.other_databases[db] += 1
            return
        try:
            if await store.record_spooled(rec):
                result.written += 1
                return
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as e:
            # This database refuses the record itself (a row deleted under us, a value it cannot hold):
            # retrying cannot help, and it must not block every later run.
            if db is None:
                keep.append(raw)
                result.unkeyed_kept += 1
            else:
                log.warning("spool: answer %s refused by the database: %s", rec.response_id,
                            str(e).strip().splitlines()[:1])
                quarantine.append(raw)
                result.quarantined += 1
            return
        status = await response_status(store, rec.response_id)
        if status == "success":
            result.already_written += 1
        elif status is None and db is not None:
            quarantine.append(raw)
            result.quarantined += 1
        elif status is None:
            keep.append(raw)
            result.unkeyed_kept += 1
        else:
            keep.append(raw)  # not written and not succeeded: changed under us; the next replay tries again

    def _settle(
        self, keep: list[bytes], quarantine: list[bytes], bad: list[bytes], works: list[Path], result: ReplayResult
    ) -> None:
        """Make every line that stays durable in its place, then drop the work files."""
        if quarantine:
            result.quarantine = self.quarantine_path
            _append_lines(self.quarantine_path, quarantine)
        if bad:
            _append_lines(self.home / BAD_NAME, [base64.b64encode(b) for b in bad])
        _append_lines(self.path, keep)
        for w in works:
            with contextlib.suppress(FileNotFoundError):
                w.unlink()
        _fsync_dir(self.home)

    def _report(self, r: ReplayResult) -> None:
        if r.written:
            log.info("spool: %d answer(s) written into the database", r.written)
        if r.already_written:
            log.info("spool: %d answer(s) skipped: their pair succeeded since (already written)", r.already_written)
        if r.quarantined:
            log.warning("spool: %d answer(s) of this database have no row in it (deleted?); moved to %s, "
                        "nothing deleted", r.quarantined, r.quarantine)
        if r.other_databases:
            log.warning("spool: %d answer(s) belong to %d other database(s); kept in %s until a run connects "
                        "to their database", sum(r.other_databases.values()), len(r.other_databases), self.path)
        if r.unkeyed_kept:
            log.warning("spool: %d answer(s) spooled by an older version have no row in this database; kept "
                        "in %s", r.unkeyed_kept, self.path)
        if r.torn:
            log.warning("spool: %d torn line(s) set aside in %s", r.torn, self.home / BAD_NAME)
