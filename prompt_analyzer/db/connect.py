"""Turning a database URL into a pool: TLS for remote hosts, Supabase poolers, clear errors.

Error tree::

    DatabaseError
    ├── BadDatabaseUrl        the URL does not parse (exit 2)
    └── DatabaseUnavailable   cannot connect: down, unreachable, wrong password (exit 75)
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool


class DatabaseError(RuntimeError):
    pass


class BadDatabaseUrl(DatabaseError):
    pass


class DatabaseUnavailable(DatabaseError):
    pass


@dataclass(frozen=True)
class Target:
    conninfo: str
    host: str  # for messages: host or socket directory, never the password
    port: str
    transaction_pooler: bool
    local: bool

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}" if not self.host.startswith("/") else f"socket {self.host}"


def _is_local(host: str) -> bool:
    if not host or host.startswith("/") or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_target(url: str, pooler: str = "auto") -> Target:
    """Validate ``url`` and add what a safe connection needs (sslmode, pooler settings)."""
    url = url.strip()
    try:
        if "://" in url:
            parts = urlsplit(url)
            if parts.scheme not in ("postgres", "postgresql"):
                raise BadDatabaseUrl(f"DATABASE_URL: unsupported scheme {parts.scheme!r} (use postgresql://)")
            _ = parts.port  # raises ValueError on a bad port
        params = conninfo_to_dict(url)
    except BadDatabaseUrl:
        raise
    except (ValueError, psycopg.ProgrammingError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise BadDatabaseUrl(f"DATABASE_URL is malformed: {_redact(msg, url)}") from None
    host = str(params.get("host") or "")
    port = str(params.get("port") or "5432")
    local = all(_is_local(h) for h in host.split(",")) if host else True
    extra: dict[str, Any] = {}
    if not local and "sslmode" not in params:
        extra["sslmode"] = "require"
    tx = pooler == "transaction" or (pooler == "auto" and port == "6543")
    extra.setdefault("connect_timeout", params.get("connect_timeout") or 10)
    # A server that vanishes without closing the socket (a partition) must not hold a statement for TCP's
    # own 15 minutes: keepalives and a user timeout end such a connection within about a minute.
    for k, v in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_interval", 10), ("keepalives_count", 3),
                 ("tcp_user_timeout", 60_000)):
        if k not in params:
            extra[k] = v
    extra.setdefault("application_name", params.get("application_name") or "prompt-analyzer")
    return Target(make_conninfo(url, **extra), host or "localhost", port, tx, local)


def _redact(msg: str, url: str) -> str:
    pw = urlsplit(url).password if "://" in url else None
    return msg.replace(pw, "***") if pw else msg


def connect_kwargs(target: Target) -> dict[str, Any]:
    # Supabase's transaction pooler (port 6543) cannot keep prepared statements across transactions.
    return {"row_factory": dict_row, "prepare_threshold": None if target.transaction_pooler else 5}


def unavailable(target: Target, exc: BaseException) -> DatabaseUnavailable:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "password authentication failed" in text:
        reason = "password authentication failed"
    elif isinstance(exc, socket.gaierror) or "could not translate host name" in text:
        reason = "host name not found"
    else:
        reason = text
    return DatabaseUnavailable(f"cannot connect to the database at {target.where}: {reason}")


async def open_pool(target: Target, *, max_size: int = 10, min_size: int = 1) -> AsyncConnectionPool[Any]:
    """Open a pool and prove the database answers; raises DatabaseUnavailable naming host and port."""
    try:
        probe = await psycopg.AsyncConnection.connect(target.conninfo, **connect_kwargs(target))
        await probe.close()
    except (psycopg.OperationalError, OSError) as e:
        raise unavailable(target, e) from None
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        target.conninfo,
        min_size=min_size,
        max_size=max_size,
        kwargs=connect_kwargs(target),
        open=False,
        timeout=30,
        name="prompt-analyzer",
        # A connection is proven alive when handed out: after a server restart the dead ones are
        # replaced one checkout at a time, inside the caller's bounded wait (cancellable, unlike
        # pool.check(), which swallows cancellation).
        check=AsyncConnectionPool.check_connection,
    )
    await pool.open(wait=True, timeout=30)
    return pool
