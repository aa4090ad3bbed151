"""The embedded server: private, shared by concurrent processes, stopped by the last one."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import psycopg
import pytest

from prompt_analyzer.db.embedded import DB_USER, EmbeddedError, EmbeddedPostgres


def test_start_share_and_stop(server_home: Path) -> None:
    private = server_home.parent / "private"
    private.mkdir(mode=0o700)
    os.chmod(private, 0o700)
    home = private / "home"
    first, second = EmbeddedPostgres(home), EmbeddedPostgres(home)
    url = first.start()
    try:
        assert second.start() == url  # joins the running server
        with psycopg.connect(url) as conn:
            user = conn.execute("SELECT current_setting('data_directory')").fetchone()
            assert user and Path(user[0]) == home / "pgdata"
            listen = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
            assert listen == ("",)  # Unix socket only: no TCP port to collide with
        first.release()
        with psycopg.connect(url) as conn:  # still up: the second user holds it
            assert conn.execute("SELECT 1").fetchone() == (1,)
        second.release()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
    finally:
        first.release()
        second.release()
        first.stop("immediate")
    mode = (home / "pgdata").stat().st_mode
    assert stat.S_IMODE(mode) == 0o700
    if os.geteuid() == 0:
        owner = pwd.getpwuid((home / "pgdata").stat().st_uid).pw_name
        assert owner == DB_USER
        # the user's private directory gained only the traverse bit, never read or write for others
        assert stat.S_IMODE(private.stat().st_mode) == 0o701
        assert pwd.getpwnam(DB_USER).pw_shell.endswith(("nologin", "false"))


def test_a_data_directory_of_another_major_version_is_refused_plainly(server_home: Path) -> None:
    server = EmbeddedPostgres(server_home)
    server.pgdata.mkdir(parents=True)
    major = server.binaries_major()
    assert major.isdigit()
    older = str(int(major) - 2)
    (server.pgdata / "PG_VERSION").write_text(older + "\n")
    with pytest.raises(EmbeddedError) as e:
        server.start()
    assert f"written by PostgreSQL {older}, but the installed embedded server is PostgreSQL {major}" in str(e.value)
    assert "move the directory aside" in str(e.value)
    server.release()
