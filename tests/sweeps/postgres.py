"""A throw-away PostgreSQL server for the many-machine sweep test.

``postgres_url()`` is a context manager: it runs Debian's ``initdb`` into a temporary folder,
starts ``postgres`` on 127.0.0.1 and a free port (unix socket in that folder too), yields a
SQLAlchemy URL, and stops the server by its pid when the block ends, whatever happened in it.
PostgreSQL refuses to run as root, so as root the server runs as the ``postgres`` system user
(created by Debian's package).

Where to get a server, in order:

1. ``MANGAASSIST_TEST_POSTGRES_URL`` (an existing server's URL; nothing is started);
2. the server binaries of ``postgresql`` (``/usr/lib/postgresql/*/bin``, or on ``PATH``).

Without either, or without the ``psycopg`` driver, the test skips with what to install;
with ``MANGAASSIST_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it) it fails instead, so CI always
runs it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port

URL_ENV = "MANGAASSIST_TEST_POSTGRES_URL"
REQUIRE_ENV = "MANGAASSIST_REQUIRE_POSTGRES"
START_TIMEOUT_S = 30


def unavailable(why: str) -> None:
    """Skip, or fail where the environment requires PostgreSQL (CI)."""
    message = (
        f"PostgreSQL sweep test not run: {why}. Install the server (Debian: apt-get install "
        f"postgresql) and the driver (pip install -e '.[dev]'), or set {URL_ENV}"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
    pytest.skip(message)


def server_bin() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``, newest major version first."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_server_user() -> list[str]:
    """The command prefix that drops root to the ``postgres`` user (empty when not root)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("runuser") is None:
        unavailable("running as root and runuser is missing")
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        unavailable("running as root and there is no 'postgres' user to run the server as")
    return ["runuser", "-u", "postgres", "--"]


def _wait_ready(bindir: Path, port: int, sock: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited with {proc.returncode}:\n{log.read_text()}")
        ready = subprocess.run(
            [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-q"],
            check=False,
        )
        if ready.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"postgres not ready in {START_TIMEOUT_S} s:\n{log.read_text()}")


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """Yield the URL of a PostgreSQL server that lives as long as the block."""
    if os.environ.get(URL_ENV):
        yield os.environ[URL_ENV]
        return
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's default PostgreSQL driver)
    except ImportError:
        unavailable("the psycopg driver is not installed")
    bindir = server_bin()
    if bindir is None:
        unavailable("no PostgreSQL server binaries (initdb) found")
    prefix = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="mangaassist-pg-"))
    proc: subprocess.Popen | None = None
    try:
        data, log = root / "data", root / "server.log"
        if prefix:
            shutil.chown(root, user="postgres", group="postgres")
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "optuna", "-A", "trust"],
            check=True,
            capture_output=True,
        )
        port = free_port()
        with log.open("w") as out:
            proc = subprocess.Popen(
                [
                    *prefix,
                    str(bindir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-c",
                    "listen_addresses=127.0.0.1",  # loopback only
                    "-c",
                    f"unix_socket_directories={root}",
                    "-c",
                    "fsync=off",  # a throw-away database: speed over durability
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_ready(bindir, port, root, proc, log)
        subprocess.run(
            [str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "optuna", "sweep"],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://optuna@127.0.0.1:{port}/sweep"
    finally:
        if proc is not None and proc.poll() is None:
            # runuser forwards SIGINT to postgres: "fast" shutdown, then SIGKILL the group.
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)
