"""Re-check a countbench history (JSON Lines) from docs/history.md alone."""

from __future__ import annotations

import heapq
import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

WRITES = ("login", "logout")
NEVER = -math.inf


@dataclass
class Checked:
    reads: dict[int, bool]  # index of a judged (ok) read -> outside
    finals: dict[int, bool]  # node -> its final count is outside
    final_bounds: tuple[int, int]  # [low, high] the finals were checked against
    agree: bool  # all final values equal
    passed: bool  # the verdict of the "Verdicts" section


@dataclass
class Spec:
    """The specification's state; for `requests: false`, the doubt of `lost` lines."""

    counts: str
    timeout: float
    opens: bool
    tolerance: float
    balance: int = 0
    members: set[str] = field(default_factory=set)
    live: dict[str, float] = field(default_factory=dict)  # sessions / seen: last touch
    expired: int = 0  # X: sessions expired so far
    lost: set[int] = field(default_factory=set)
    lost_logins: int = 0
    lost_logouts: int = 0
    doubt: set[str] = field(default_factory=set)
    heard: dict[str, float] = field(default_factory=dict)  # for leaving doubt

    def apply(self, kind: str, user: str, at: float) -> None:
        c = self.counts
        if kind != "logout" or c != "seen":
            self.heard[user] = max(self.heard.get(user, NEVER), at)
        if c in ("balance", "logins"):
            if kind in WRITES:
                self.balance += 1 if kind == "login" else (-1 if c == "balance" else 0)
        elif c == "members":
            if kind in WRITES:
                (self.members.add if kind == "login" else self.members.discard)(user)
                self.doubt.discard(user)  # their next ok login or logout
        elif kind == "logout":
            if c == "sessions":
                self.live.pop(user, None)
        elif kind == "login" or c == "seen" or user in self.live or self.opens:  # a touch
            self.live[user] = max(self.live.get(user, NEVER), at)

    def lose(self, index: int, op: dict[str, Any]) -> None:
        if index in self.lost:
            return
        self.lost.add(index)
        if self.counts in ("balance", "logins"):  # a logout only matters for balance
            self.lost_logins += op["kind"] == "login"
            self.lost_logouts += op["kind"] == "logout" and self.counts == "balance"
        else:
            self.doubt.add(op["user"])
            self.heard[op["user"]] = max(self.heard.get(op["user"], NEVER), op["time"])

    def expire(self, t: float) -> None:
        for user in [u for u, s in self.live.items() if s + self.timeout < t]:
            del self.live[user]
            self.expired += 1
        if self.counts in ("sessions", "seen"):  # leaving doubt, after the expiries
            gone = {u for u in self.doubt - set(self.live) if self.heard[u] + self.timeout < t}
            self.doubt -= gone

    def bounds(self) -> tuple[int, int]:
        if self.counts in ("balance", "logins"):
            low, high = self.balance - self.lost_logins, self.balance + self.lost_logouts
        else:
            counted = self.members if self.counts == "members" else set(self.live)
            low = len(counted - self.doubt)
            high = low + len(self.doubt)
        low, high = max(0, low), max(0, high)
        if self.tolerance > 0:
            low = math.floor(low * (1 - self.tolerance))
            high = math.ceil(high * (1 + self.tolerance))
        return low, high


@dataclass
class Doubt:
    """`requests: true`: the users in doubt (in flight or tainted), and their timers."""

    timeout: float
    rto: float
    idle: bool  # sessions / seen: the idle timer untaints
    flight: dict[str, set[int]] = field(default_factory=dict)  # logins/logouts in flight
    overlapped: set[int] = field(default_factory=set)  # logins/logouts that overlapped one
    tainted: set[str] = field(default_factory=set)
    entries: int = 0  # E
    invoked: dict[str, int] = field(default_factory=dict)  # invokes (any outcome) per user
    latest: dict[str, float] = field(default_factory=dict)  # w
    last_ok: dict[str, float] = field(default_factory=dict)  # a
    oks: dict[str, int] = field(default_factory=dict)  # ok completions per user
    timers: list[tuple[float, int, str, str, int]] = field(default_factory=list)
    pushed: int = 0

    def doubted(self, u: str) -> bool:
        return bool(self.flight.get(u)) or u in self.tainted

    def size(self) -> int:
        return len({u for u, f in self.flight.items() if f} | self.tainted)

    def push(self, at: float, what: str, u: str, token: int) -> None:
        self.pushed += 1
        heapq.heappush(self.timers, (at, self.pushed, what, u, token))

    def arm(self, u: str, now: float) -> None:
        """The idle timer (sessions and seen only)."""
        if self.idle:
            at = max(now, self.latest[u] + self.timeout + self.rto)
            self.push(at, "idle", u, self.invoked[u])

    def taint(self, u: str, now: float) -> None:
        self.tainted.add(u)
        self.arm(u, now)

    def fire(self, t: float) -> None:
        """Timers fire before the first line whose time is after theirs."""
        while self.timers and self.timers[0][0] < t:
            at, _, what, u, token = heapq.heappop(self.timers)
            before = self.doubted(u)
            if what == "taint" and self.oks.get(u, 0) == token:
                self.taint(u, at)
            elif what == "idle" and self.invoked.get(u, 0) == token and not self.flight.get(u):
                self.tainted.discard(u)
            self.entries += not before and self.doubted(u)

    def invoke(self, index: int, op: dict[str, Any], failed: bool) -> None:
        u, t = op["user"], op["time"]
        self.invoked[u] = self.invoked.get(u, 0) + 1
        self.latest[u] = t
        if op["kind"] in WRITES and not failed:
            flying = self.flight.setdefault(u, set())
            if flying:
                self.overlapped |= flying | {index}
            flying.add(index)
        if u in self.tainted:
            self.arm(u, t)

    def complete(self, index: int, op: dict[str, Any], outcome: str, t: float) -> None:
        u, kind = op["user"], op["kind"]
        self.flight.get(u, set()).discard(index)
        if outcome == "ok":
            self.last_ok[u] = max(self.last_ok.get(u, NEVER), op["time"])
            self.oks[u] = self.oks.get(u, 0) + 1
            if kind in WRITES and index in self.overlapped:  # either order: taint
                self.taint(u, t)
            elif kind in WRITES:  # overlapped none: untaint
                self.tainted.discard(u)
        elif outcome == "info" and kind in WRITES:
            self.taint(u, t)
        elif outcome == "info":
            a = self.last_ok.get(u, 0.0)  # 0 when there is no ok operation yet
            self.push(max(t, a + self.timeout), "taint", u, self.oks.get(u, 0))


def off(value: int, low: int, high: int) -> int:
    return max(0, low - value, value - high)


def check_real(lines: list[dict[str, Any]]) -> Checked:
    """``source: real``: Jepsen's counter check (docs/history.md, "The check, source
    real"): a read in [ok logins completed before s - logouts (ok or info) invoked before
    e, logins (ok or info) invoked before e - ok logouts completed before s]."""
    ops: dict[int, dict[str, Any]] = {}
    for line in lines:
        if line["type"] == "invoke":
            ops[line["index"]] = {**line, "start": line["time"]}
        elif line["type"] == "complete":
            ops[line["index"]].update(end=line["time"], outcome=line["outcome"], v=line["value"])
    done = [op for op in ops.values() if "end" in op]
    writes = [op for op in done if op["kind"] in ("login", "logout") and op["outcome"] != "fail"]

    def bounds(s: float, e: float) -> tuple[int, int]:
        acked = [w for w in writes if w["outcome"] == "ok" and w["end"] < s]
        maybe = [w for w in writes if w["start"] < e]
        lower = sum(w["kind"] == "login" for w in acked) - sum(w["kind"] == "logout" for w in maybe)
        upper = sum(w["kind"] == "login" for w in maybe) - sum(w["kind"] == "logout" for w in acked)
        return lower, upper

    reads: dict[int, bool] = {}
    finals: dict[int, bool] = {}
    final_bounds = (0, 0)
    for op in done:
        if op["kind"] != "read" or op["outcome"] != "ok" or op["v"] is None:
            continue
        if op["process"] == "final":
            final_bounds = bounds(math.inf, math.inf)
            finals[0] = not final_bounds[0] <= op["v"] <= final_bounds[1]
        else:
            low, high = bounds(op["start"], op["end"])
            reads[op["index"]] = not low <= op["v"] <= high
    final_ok = bool(finals) and not any(finals.values())
    strong = lines[0]["claim"] == "strong"
    passed = final_ok and not (strong and any(reads.values()))
    return Checked(reads, finals, final_bounds, True, passed)


def check_run(lines: list[dict[str, Any]]) -> Checked:
    """``source: run``: replay the writes in `now` order, read at the largest `now`."""
    head, sp = lines[0], lines[0]["specification"]
    spec = Spec(sp["counts"], float(head["session_timeout"]), bool(sp["heartbeat_opens"]),
                float(sp["tolerance"]))  # fmt: skip
    writes = sorted(
        (line["now"], i, line["kind"], line["user"])
        for i, line in enumerate(lines)
        if line["type"] == "invoke" and line["kind"] in ("login", "logout", "heartbeat")
    )
    nows = [line["now"] for line in lines if line["type"] == "invoke"]
    last = max(nows, default=0.0)
    if sp["counts"] in ("sessions", "seen") and spec.timeout < last - min(nows, default=last):
        return Checked({}, {}, (0, 0), True, True)  # not judged: see the docs
    for now, _, kind, user in writes:
        spec.expire(now)
        spec.apply(kind, user, now)
    spec.expire(last)
    low, high = spec.bounds()
    values = [line["value"] for line in lines if line["type"] == "final"]
    finals = {line["node"]: not low <= line["value"] <= high for line in lines
              if line["type"] == "final"}  # fmt: skip
    passed = bool(finals) and not any(finals.values())
    return Checked({}, finals, (low, high), len(set(values)) <= 1, passed)


def check(lines: list[dict[str, Any]]) -> Checked:
    head = lines[0]
    if head["source"] == "real":
        return check_real(lines)
    if head["source"] == "run":
        return check_run(lines)
    sp = head["specification"]
    timeout, rto = float(head["session_timeout"]), float(head["request_timeout"] or 0)
    requests = bool(head["requests"])
    spec = Spec(sp["counts"], timeout, bool(sp["heartbeat_opens"]), float(sp["tolerance"]))
    doubt = Doubt(timeout, rto, sp["counts"] in ("sessions", "seen"))
    inv: dict[int, dict[str, Any]] = {}
    # a `fail` (adjacent to its invoke) was never sent: it is never in flight
    failed = {x["index"] for x in lines if x["type"] == "complete" and x["outcome"] == "fail"}
    noted: dict[int, tuple[int, int, int, int, int]] = {}
    reads: dict[int, bool] = {}
    finals: dict[int, bool] = {}
    final_bounds = (0, 0)
    for line in lines[1:]:
        kind, t = line["type"], line["time"]
        spec.expire(t)
        doubt.fire(t)
        if kind == "lost":
            spec.lose(line["op"], inv[line["op"]])
        if kind == "final":
            low, high = spec.bounds()
            if requests:
                low, high = max(0, low - doubt.size()), high + doubt.size()
            final_bounds = (low, high)
            finals[line["node"]] = not low <= line["value"] <= high
        if kind not in ("invoke", "complete"):
            continue
        index = line["index"]
        op = inv.setdefault(index, line)
        u, what = op["user"], op["kind"]
        if what == "read":
            if kind == "invoke" and requests:
                noted[index] = (*spec.bounds(), doubt.size(), doubt.entries, spec.expired)
            elif kind == "complete" and line["outcome"] == "ok" and requests:
                low, high, d, e, x = noted[index]
                room = d + (doubt.entries - e) + (spec.expired - x)
                reads[index] = off(line["value"], low, high) > room
            elif kind == "complete" and line["outcome"] == "ok":
                reads[index] = off(line["value"], *spec.bounds()) > 0
            continue
        before = doubt.doubted(u)
        if kind == "invoke" and requests:
            doubt.invoke(index, op, index in failed)
        elif kind == "complete":
            if line["outcome"] == "ok":
                spec.apply(what, u, op["time"])
            if requests:
                doubt.complete(index, op, line["outcome"], t)
        doubt.entries += not before and doubt.doubted(u)
    values = [line["value"] for line in lines if line["type"] == "final"]
    agree = len(set(values)) <= 1
    final_ok = not any(finals.values())
    if head["claim"] == "strong":
        passed = final_ok and not any(reads.values())
    else:
        passed = final_ok and agree
    return Checked(reads, finals, final_bounds, agree, passed)


def check_file(path: str) -> Checked:
    with open(path, encoding="utf-8") as f:
        return check([json.loads(s) for s in f if s.strip()])


def main() -> None:
    c = check_file(sys.argv[1])
    outside, low, high = sum(c.reads.values()), *c.final_bounds
    verdict = "PASS" if c.passed else "FAIL"
    print(f"reads judged {len(c.reads)} · outside {outside} · final [{low}, {high}] · {verdict}")
    sys.exit(0 if c.passed else 1)


if __name__ == "__main__":
    main()
