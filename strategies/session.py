"""``session``: a session tracker, i.e. per-user last-seen time with expiry.

Login records the user as seen now (a second login of an online user does not count
twice); heartbeat refreshes the last-seen time of an online user; logout removes the user
(a logout of an unknown user changes nothing, so the count never goes negative). A user
not seen for longer than the session timeout is dropped by the expiry sweep that runs at
every ``count``. Consistency: strong on one server (one copy, updates serialised by a lock
in thread mode), and it is the only in-process strategy that forgets users who vanish
without logging out.

The table is :class:`~.tracker.SessionTracker`.

:class:`SessionReplica` is the design as the fault simulator runs it (a
:class:`~.base.RequestReplica`): node 0 is the server and holds the one table; any other
node is a front-end that forwards each client request to node 0 as a message and reports
the server's answer (a read's value, a write's acknowledgement), or a failure when none
came within ``FORWARD_TIMEOUT`` seconds. A request carries the client's time, which the
server applies (as the real clients pass ``now``), and the server orders each user's
login and logout by it: one that is older than the user's latest applied login or logout
(a reordered or duplicated message) is ignored. A front-end cut off from node 0 loses its
users' operations and its reads fail; it never answers from a copy of its own.
"""

from __future__ import annotations

from .base import Answer, Consistency, LockedNode, Message, Mode, Node, SharedStrategy
from .batching import WritesByKind
from .spec import SESSIONS
from .tracker import SessionTracker

#: Seconds a front-end waits for the server's answer (virtual seconds in the simulator).
FORWARD_TIMEOUT = 2.0


def apply(tracker: SessionTracker, kind: str, user: str, now: float) -> None:
    """``login``, ``logout`` or ``heartbeat`` of ``user`` on ``tracker``."""
    if kind == "login":
        tracker.login(user, now)
    elif kind == "logout":
        tracker.logout(user, now)
    elif kind == "heartbeat":
        tracker.heartbeat(user, now)
    else:
        raise ValueError(f"not a write: {kind!r}")


class LocalSessions:
    """A simulated node that keeps its own users' sessions (the node twins of
    ``aggregate`` and ``eventual``): the client calls go to its :class:`SessionTracker`."""

    def __init__(self, node_id: int, timeout: float) -> None:
        self.node_id = node_id
        self.sessions = SessionTracker(timeout)

    def login(self, user: str, now: float) -> None:
        self.sessions.login(user, now)

    def logout(self, user: str, now: float) -> None:
        self.sessions.logout(user, now)

    def heartbeat(self, user: str, now: float) -> None:
        self.sessions.heartbeat(user, now)


class SessionReplica(WritesByKind):
    """One node of ``session`` for the simulator: the server (node 0) or a front-end.

    Messages: ``KIND ID TIME USER`` (a forwarded request; USER ``-`` for a count) to node
    0, answered by ``ok ID VALUE`` (VALUE ``-`` for a write). An answer to an unknown or
    finished request is ignored.
    """

    SERVER = 0

    def __init__(self, node_id: int, timeout: float, forward_timeout: float) -> None:
        self.node_id = node_id
        self.request_timeout = forward_timeout
        self.table = SessionTracker(timeout) if node_id == self.SERVER else None
        self.latest: dict[str, float] = {}  # user -> client time of its latest login/logout
        self.pending: dict[int, float] = {}  # request id -> deadline
        self.outbox: list[Message] = []
        self.done: list[Answer] = []

    def _serve(self, kind: str, user: str, at: float, now: float) -> int | None:
        """Apply one request at the server; a count's value, else None."""
        table = self.table
        assert table is not None
        if kind == "count":
            return table.count(now)
        if kind != "heartbeat":
            if at < self.latest.get(user, -1.0):
                return None  # older than the user's latest login or logout: superseded
            self.latest[user] = at
        apply(table, kind, user, at)
        return None

    def write(self, kind: str, user: str, now: float) -> None:
        """A write nobody waits for (the plain :class:`~.base.Node` calls)."""
        if self.table is not None:
            self._serve(kind, user, now, now)
        else:
            body = f"{kind} -1 {now!r} {user}".encode("ascii")
            self.outbox.append(Message(self.node_id, self.SERVER, body))

    def count(self, now: float) -> int:
        """The table's count at the server; 0 at a front-end (it holds no copy)."""
        return 0 if self.table is None else self.table.count(now)

    def request(self, request_id: int, kind: str, user: str, now: float) -> None:
        if self.table is not None:
            value = self._serve(kind, user, now, now)
            self.done.append(Answer(request_id, True, value))
            return
        self.pending[request_id] = now + self.request_timeout
        body = f"{kind} {request_id} {now!r} {user or '-'}".encode("ascii")
        self.outbox.append(Message(self.node_id, self.SERVER, body))

    def sync(self, now: float) -> list[Message]:
        return []

    def receive(self, message: Message, now: float) -> list[Message]:
        parts = message.body.decode("ascii").split()
        if parts[0] == "ok":
            request_id = int(parts[1])
            if self.pending.pop(request_id, None) is not None:
                value = None if parts[2] == "-" else int(parts[2])
                self.done.append(Answer(request_id, True, value))
            return []
        if self.table is None:
            return []  # a request that reached a front-end: not addressed to it
        kind, request_id, at = parts[0], int(parts[1]), float(parts[2])
        value = self._serve(kind, parts[3], at, now)
        if request_id < 0:
            return []
        body = f"ok {request_id} {'-' if value is None else value}".encode("ascii")
        return [Message(self.node_id, message.src, body)]

    def poll(self, now: float) -> tuple[list[Message], list[Answer]]:
        done, self.done = self.done, []
        for request_id in [i for i, deadline in self.pending.items() if deadline <= now]:
            del self.pending[request_id]
            done.append(Answer(request_id, False))
        outbox, self.outbox = self.outbox, []
        return outbox, done


class SessionStrategy(SharedStrategy):
    name = "session"
    summary = "Session tracker: per-user last-seen time, heartbeats, expiry after a timeout."
    consistency = Consistency.STRONG
    specification = SESSIONS
    # A process-shared session table would be a server of its own: that is `central`.
    modes = frozenset({Mode.THREAD, Mode.ASYNCIO})

    def open(self, mode: Mode) -> Node:
        if mode is Mode.THREAD:
            return LockedNode(SessionTracker(self.config.session_timeout))
        return SessionTracker(self.config.session_timeout)

    def replica(self, node_id: int) -> SessionReplica:
        """The design on the fault simulator: node 0 the server, the others front-ends
        (see the module docstring)."""
        timeout = min(FORWARD_TIMEOUT, self.config.request_timeout)
        return SessionReplica(node_id, self.config.session_timeout, timeout)
