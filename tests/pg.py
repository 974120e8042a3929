"""A throwaway PostgreSQL cluster for the tests, started from the installed server binaries.

``start_cluster`` runs ``initdb`` and ``pg_ctl`` in a fresh temporary folder: the server
listens on 127.0.0.1 only, on a free port, with a generated password for TCP connections,
and without durability (``fsync=off``): it holds test data for one session. As root (CI),
the server runs as the ``postgres`` user, since ``initdb`` refuses to run as root.
``Cluster.stop`` stops it and removes the folder.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

INSTALL = (
    "the PostgreSQL tests need PostgreSQL's server binaries (initdb, pg_ctl), and none were "
    "found (pg_config --bindir, /usr/lib/postgresql/*/bin, PATH). Install them: "
    "`apt-get install postgresql` on Debian or Ubuntu (.ci/run does this), "
    "`brew install postgresql` on macOS, or put their folder on PATH"
)
USER = "tierwise"
SERVER_USER = "postgres"  # who runs the server when the tests run as root


class PostgresMissingError(RuntimeError):
    """No PostgreSQL server binaries on this machine (the message says how to install them)."""


def server_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: pg_config's, the newest Debian one, or PATH's.

    Raises:
        PostgresMissingError: none has both.
    """
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda p: _version(p.parent.name), reverse=True)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresMissingError(INSTALL)


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A running throwaway server; ``url`` names one of its databases."""

    root: Path
    bindir: Path
    port: int
    password: str
    run_as: tuple[str, ...]  # the command prefix running the server's tools
    options: str = ""  # the server's settings (pg_ctl -o), kept for ``resume``

    def url(self, database: str = "postgres") -> str:
        """A ``postgresql://`` URL with the password (no driver named, as a user writes it)."""
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new, empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = (
            f"host=127.0.0.1 port={self.port} user={USER} password={self.password} dbname=postgres"
        )
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def halt(self) -> None:
        """Stop the server, keeping its data (an outage: ``resume`` brings it back)."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Start the halted server again, on the same port."""
        log = str(self.root / "server.log")
        data = str(self.root / "data")
        self._run("pg_ctl", "-D", data, "-l", log, "-o", self.options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """Stop the server at once (nothing in it is kept) and remove its folder."""
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [*self.run_as, str(self.bindir / tool), *args]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True)
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr}{tail}")


def start_cluster() -> Cluster:
    """Initialise and start a server on 127.0.0.1; the caller stops it.

    Raises:
        PostgresMissingError: no server binaries are installed.
        RuntimeError: ``initdb`` or ``pg_ctl`` failed (their output and the server log say why).
    """
    bindir = server_bindir()
    root = Path(tempfile.mkdtemp(prefix="tierwise-pg-"))
    run_as: tuple[str, ...] = ()
    if os.geteuid() == 0:
        try:
            shutil.chown(root, SERVER_USER, SERVER_USER)
        except LookupError:
            shutil.rmtree(root)
            raise PostgresMissingError(
                f"the tests run as root, and initdb refuses to: a {SERVER_USER!r} user must run "
                "the server (the Debian package creates it), or run the tests as another user"
            ) from None
        run_as = ("runuser", "-u", SERVER_USER, "--")
    password = secrets.token_urlsafe(18)
    pwfile = root / "password"
    pwfile.write_text(password + "\n")
    if run_as:
        shutil.chown(pwfile, SERVER_USER, SERVER_USER)
    port = _free_port()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
    )
    cluster = Cluster(root, bindir, port, password, run_as, options)
    data = str(root / "data")
    try:
        cluster._run(
            "initdb", "-D", data, "-U", USER, f"--pwfile={pwfile}", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        pwfile.unlink()
        log = str(root / "server.log")
        cluster._run("pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "-t", "60", "start")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster
