"""A real PostgreSQL for the tests: Debian's server binaries, a cluster made in a temporary
directory and served on a free loopback port, stopped and removed at the end.

PostgreSQL refuses to run as root, so when the tests run as root the cluster is made and run
as the ``postgres`` user (the Debian package creates it) through ``runuser``. Clients sign in
as ``afc`` with a password (SCRAM over TCP, as a node would); the harness itself uses the
cluster's Unix socket in its directory.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PASSWORD", "Postgres", "available", "postgres"]

PASSWORD = "afc-test-secret"
USER = "afc"


def _bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def available() -> str | None:
    """Why no PostgreSQL can be started here, or None."""
    if _bin_dir() is None:
        return "PostgreSQL's server is not installed (Debian package postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "there is no postgres user to run PostgreSQL as (Debian package postgresql)"
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    def __init__(self, port: int | None = None) -> None:
        missing = available()
        if missing:
            raise RuntimeError(missing)
        bin_dir = _bin_dir()
        assert bin_dir is not None
        self.bin = bin_dir
        self.port = port or _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="afc-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.socket_dir.mkdir()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            account = pwd.getpwnam("postgres")
            for path in (self.root, self.socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        self.root.chmod(0o755)
        pwfile = self.root / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self.as_postgres:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        self._run("initdb", "-D", str(self.data), "-U", USER, "--pwfile", str(pwfile),
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-sync")
        pwfile.unlink()
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.socket_dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 200\nshared_buffers = 64MB\n")
        self.start()
        self._psql("CREATE DATABASE afc OWNER afc")

    def _command(self, tool: str, *args: str) -> list[str]:
        command = [str(self.bin / tool), *args]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def _run(self, tool: str, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(self._command(tool, *args), capture_output=True, text=True, check=False,
                              timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {done.stderr.strip() or done.stdout}")
        return done.stdout

    def _psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(self._command_psql(database, sql), capture_output=True, check=False,
                              text=True, timeout=30, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {sql}: {done.stderr.strip()}")
        return done.stdout

    def _command_psql(self, database: str, sql: str) -> list[str]:
        psql = shutil.which("psql") or str(self.bin / "psql")
        command = [psql, "-h", str(self.socket_dir), "-p", str(self.port), "-U", USER, "-d",
                   database, "-v", "ON_ERROR_STOP=1", "-qAtc", sql]
        return ["runuser", "-u", "postgres", "--", *command] if self.as_postgres else command

    def sql(self, statement: str, database: str = "afc") -> str:
        """Run ``statement`` as the cluster's owner; its output (unaligned, tuples only)."""
        return self._psql(statement, database)

    @property
    def url(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/afc"

    def fresh_database(self, name: str) -> str:
        """A new empty database ``name``; its URL."""
        self._psql(f'CREATE DATABASE "{name}" OWNER afc')
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, a clean stop; ``immediate``: as a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def log_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "server.log").read_text(errors="replace")
        return ""

    def postmaster_pid(self) -> int | None:
        """The server's first process (every other is below it), or None when it is down."""
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        pid = self.postmaster_pid()
        if pid is not None:  # pg_ctl could not stop it: the server is ours to end
            with contextlib.suppress(Exception):
                os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    try:
        yield server
    finally:
        server.close()
