"""A real PgBouncer in transaction mode in front of the test server, for tests that must hold through a
transaction pooler (as Supabase's port 6543 is): session state — advisory locks, prepared statements,
LISTEN — does not survive a transaction there.

Debian's ``pgbouncer`` (``.ci/run`` installs it).  It refuses to run as root, so as root it runs as the
``postgres`` user (or ``nobody``), with its files in a directory that user can read.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pgbouncer(target_url: str) -> Iterator[str]:
    """PgBouncer (pool_mode = transaction) in front of ``target_url``'s server; yields the URL of
    ``target_url``'s database through it."""
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if binary is None:
        pytest.skip("pgbouncer not installed (apt-get install pgbouncer)")
    params = conninfo_to_dict(target_url)
    host, port = str(params.get("host") or "127.0.0.1"), str(params.get("port") or "5432")
    user = str(params.get("user") or "postgres")
    listen = _free_port()
    home = Path(tempfile.mkdtemp(prefix="pa-test-pgbouncer-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        if host.startswith("/"):
            # A Unix socket (the embedded test server): only the server's own account may enter its
            # directory, so pgbouncer runs as that account.
            entry = pwd.getpwuid(Path(host).stat().st_uid)
        else:
            entry = pwd.getpwnam("postgres" if _has_user("postgres") else "nobody")
        run_as = ["-u", entry.pw_name]
        os.chown(home, entry.pw_uid, entry.pw_gid)  # its log file is written there
    (home / "users.txt").write_text(f'"{user}" ""\n')
    (home / "pgbouncer.ini").write_text(f"""
[databases]
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {home / "users.txt"}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = {home / "pgbouncer.log"}
""")
    for f in home.iterdir():
        f.chmod(0o644)
    proc = subprocess.Popen([binary, *run_as, str(home / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = make_conninfo(target_url, host="127.0.0.1", port=str(listen))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(url, prepare_threshold=None, connect_timeout=2) as c:
                    c.execute("SELECT 1")
                break
            except psycopg.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (home / "pgbouncer.log").read_text() if (home / "pgbouncer.log").exists() else ""
                    raise RuntimeError(f"pgbouncer did not start: {log[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
