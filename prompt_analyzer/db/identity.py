"""Which database is this? A stable name for the database a connection points at.

The local spool (``engine/spool.py``) keeps answers the database could not take; each one must go
back into the database it was received for, and only that one.  So a spooled answer carries the
identity of its database, read once at the start of a run (when the database is up) and compared
at replay time.

The identity is, in order of preference:

``cluster:<system_identifier>/<database name>``
    ``system_identifier`` from ``pg_control_system()``: a 64-bit number chosen at ``initdb``, the
    same for a server and its physical replicas (a failover keeps it), different for any other
    cluster; with ``current_database()`` it names one database of one cluster.  PostgreSQL grants
    ``EXECUTE`` on ``pg_control_system()`` to ``PUBLIC`` (checked on 15 and 18: no superuser nor
    ``pg_monitor`` needed), but an operator may revoke it, so the privilege is checked first
    (``has_function_privilege``) and a refusal is never raised into a transaction.

``migrated:<microseconds since the epoch>/<database name>`` (fallback)
    When ``pg_control_system()`` is not executable: the moment our first migration was applied to
    this database (``prompt_analyzer_migrations``, which every role that runs the tool reads).  It
    is unique to a database in practice, survives restarts, address changes and poolers, and needs
    no privilege beyond what a run needs anyway.  Rejected alternatives: ``pg_database.oid`` +
    name collides across clusters (every Supabase project's ``postgres`` database has the same
    oid), and ``inet_server_addr()`` is NULL over a Unix socket and is the pooler's loopback
    address behind a co-located pooler (the same for every project).

``server:<address>:<port>/<database name>`` (last resort, if even the migrations table cannot be read)

What the identity does not follow: a database moved to a new cluster (``pg_upgrade``, dump and
restore) gets a new ``system_identifier``; answers spooled for it before the move are then kept on
disk (and reported at each replay) instead of being replayed automatically.  Nothing is lost.

Also here: :func:`response_status`, the one row lookup the spool needs to tell "already written"
from "no such row in this database" (``Store.record_spooled`` answers False for both).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

_CAN_READ_CONTROL = (
    "SELECT current_database() AS datname,"
    " has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS can_read_control"
)
_SYSTEM_IDENTIFIER = "SELECT system_identifier::text AS ident FROM pg_catalog.pg_control_system()"
_FIRST_MIGRATION = (
    "SELECT (extract(epoch FROM min(applied_at)) * 1000000)::bigint::text AS ident"
    " FROM prompt_analyzer_migrations"
)
_SERVER_ADDRESS = (
    "SELECT coalesce(host(inet_server_addr()), 'local') || ':' || coalesce(inet_server_port()::text, '')"
    " AS ident"
)
_RESPONSE_STATUS = "SELECT status FROM ai_responses WHERE id = %s"


@dataclass(frozen=True, slots=True)
class DatabaseIdentity:
    kind: str  # "cluster" | "migrated" | "server"
    value: str
    database: str

    @property
    def key(self) -> str:
        """The identity as one string (what a spooled answer records)."""
        return f"{self.kind}:{self.value}/{self.database}"

    @property
    def digest(self) -> str:
        """A short name for file names (the key can hold any character a database name can)."""
        return digest_of(self.key)

    def __str__(self) -> str:
        return self.key


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


async def database_identity(store_or_pool: Any) -> DatabaseIdentity:
    """The identity of the database a :class:`~prompt_analyzer.db.Store` (or a psycopg pool) is connected to.

    One connection, autocommit statements; a refusal on one source falls through to the next.
    Errors of the connection itself (database down) are raised.
    """
    pool = getattr(store_or_pool, "pool", store_or_pool)
    async with pool.connection() as conn:
        row = await _one(conn, _CAN_READ_CONTROL)
        datname = str(row["datname"])
        if row["can_read_control"]:
            ident = await _try(conn, _SYSTEM_IDENTIFIER)
            if ident is not None:
                return DatabaseIdentity("cluster", ident, datname)
        ident = await _try(conn, _FIRST_MIGRATION)
        if ident is not None:
            return DatabaseIdentity("migrated", ident, datname)
        return DatabaseIdentity("server", str((await _one(conn, _SERVER_ADDRESS))["ident"]), datname)


async def response_status(store_or_pool: Any, response_id: uuid.UUID) -> str | None:
    """The status of an ``ai_responses`` row, None when this database has no such row."""
    pool = getattr(store_or_pool, "pool", store_or_pool)
    async with pool.connection() as conn:
        cur = await conn.execute(_RESPONSE_STATUS, (response_id,))
        row = await cur.fetchone()
    if row is None:
        return None
    return str(row["status"] if isinstance(row, dict) else row[0])


async def _one(conn: Any, query: str) -> dict[str, Any]:
    cur = await conn.execute(query)
    row = await cur.fetchone()
    assert row is not None
    if isinstance(row, dict):
        return row
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


async def _try(conn: Any, query: str) -> str | None:
    """The ``ident`` column of a one-row query, or None if the server refuses it (privilege, missing)."""
    try:
        async with conn.transaction():  # a savepoint if a transaction is open: a refusal leaves it usable
            row = await _one(conn, query)
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable, psycopg.errors.UndefinedFunction,
            psycopg.errors.FeatureNotSupported):
        return None
    ident = row["ident"]
    return None if ident is None else str(ident)
