"""``compact``: a PN-counter whose retired replicas' entries are folded away safely.

Akka's removed-node pruning: an owner announces a retirement, folds the retired entry into
its own once every member has seen the announcement, and drops the marker after a time to
live. Entries belong to replica incarnations, so a restart retires its predecessor the same
way. Contract: ``retire(node_id, now)`` only after that replica stopped taking operations
for good, not on the id itself, and never reusing a retired id. Consistency: eventual, as
``pncounter``; it counts events, not users. The protocol, the merge of markers and why the
type stays a CRDT: ``docs/compact.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .base import Message, ReplicatedStrategy
from .gcounter import entry_id, remembering
from .spec import BALANCE

#: An entry's key: a replica incarnation, ``(node_id, epoch)`` (see the module docstring).
Key = tuple[int, float]


def label(key: Key) -> str:
    """``"<node>@<epoch>"``, as ``pncounter`` names its entries."""
    return entry_id(*key)


@dataclass(slots=True)
class Marker:
    """The pruning state of one retired key (see the module docstring)."""

    owner: Key
    seen: set[Key] = field(default_factory=set)
    performed: bool = False
    at: float = 0.0  # when the owner performed the fold
    done: set[Key] = field(default_factory=set)
    generation: int = 0  # taken over from a dead owner this many times

    def rank(self) -> tuple[int, bool]:
        return (self.generation, self.performed)

    def copy(self) -> Marker:
        return Marker(
            self.owner, set(self.seen), self.performed, self.at, set(self.done), self.generation
        )

    def canonical(self) -> tuple[Any, ...]:
        return (
            self.owner,
            sorted(self.seen),
            self.performed,
            self.at,
            sorted(self.done),
            self.generation,
        )


def join_markers(a: Marker, b: Marker) -> Marker:
    if a.rank() != b.rank():
        return (a if a.rank() > b.rank() else b).copy()
    if a.owner != b.owner:
        return (a if a.owner < b.owner else b).copy()
    return Marker(
        a.owner, a.seen | b.seen, a.performed, max(a.at, b.at), a.done | b.done, a.generation
    )


class CompactCounter:
    """Per-incarnation (P, N) entries plus pruning markers of retired incarnations."""

    __slots__ = ("_encoded", "_total", "arrived", "entries", "markers", "version")

    def __init__(
        self,
        entries: dict[Key, tuple[int, int]] | None = None,
        markers: dict[Key, Marker] | None = None,
    ) -> None:
        self.entries: dict[Key, tuple[int, int]] = dict(entries or {})
        self.markers: dict[Key, Marker] = {k: m.copy() for k, m in (markers or {}).items()}
        self._total: int | None = None  # value(), until the entries change it
        # ``version`` counts changes of ``entries``: whoever changes them calls ``changed``;
        # ``encode`` reuses its last body while the entries are unchanged and no marker is
        # held (the body is then the entries alone)
        self.version = 0
        self._encoded: tuple[int, bytes] | None = None
        self.arrived: list[Key] = []  # keys a merge added, for the replica to look at

    def changed(self) -> None:
        """Note a change of ``entries`` (made here, or by the replica that owns them)."""
        self._total = None
        self.version += 1

    def add(self, key: Key, positive: int = 0, negative: int = 0) -> None:
        if positive < 0 or negative < 0:
            raise ValueError("P and N only grow")
        if self.folded(key):
            raise ValueError(f"incarnation {label(key)} was retired and folded away")
        p, n = self.entries.get(key, (0, 0))
        self.entries[key] = (p + positive, n + negative)
        self.changed()

    def folded(self, key: Key) -> bool:
        """Whether ``key``'s entry went into its owner's: its marker is performed."""
        marker = self.markers.get(key)
        return marker is not None and marker.performed

    def forget(self, key: Key) -> None:
        """Drop ``key``'s marker and its entry (the marker's time to live is over)."""
        del self.markers[key]
        if self.entries.pop(key, None) is not None:
            self.changed()

    def merge(self, other: CompactCounter) -> None:
        for key in sorted(other.markers):
            mine = self.markers.get(key)
            theirs = other.markers[key]
            self.markers[key] = theirs.copy() if mine is None else join_markers(mine, theirs)
            if mine is None or mine.performed != self.markers[key].performed:
                self._total = None
        entries = self.entries
        if not other.entries.items() <= entries.items():  # a C-speed test for "nothing new"
            grew = False
            for key, pn in other.entries.items():
                held = entries.get(key)
                if held == pn:
                    continue
                if held is None:
                    entries[key] = pn
                    self.arrived.append(key)
                elif pn[0] > held[0] or pn[1] > held[1]:
                    entries[key] = (max(pn[0], held[0]), max(pn[1], held[1]))
                else:
                    continue
                grew = True
            if grew:
                self.changed()

    def value(self) -> int:
        """The sum of P - N over the entries, a folded key's left out."""
        if self._total is None:
            if any(marker.performed for marker in self.markers.values()):
                folded = self.folded
                self._total = sum(p - n for k, (p, n) in self.entries.items() if not folded(k))
            else:
                self._total = sum(p - n for p, n in self.entries.values())
        return self._total

    def heir(self, key: Key) -> Key:
        """Where ``key``'s entry went: the end of the chain of performed folds from it
        (``key`` itself if it was not folded)."""
        chain = {key}
        while (marker := self.markers.get(key)) is not None and marker.performed:
            key = marker.owner
            if key in chain:
                break
            chain.add(key)
        return key

    def members(self) -> set[Key]:
        """Keys with an entry that are not being retired."""
        return {key for key in self.entries if key not in self.markers}

    def encode(self) -> bytes:
        """JSON: ``e`` the entries ``[node, epoch, P, N]``, ``x`` the other keys markers name,
        ``m`` the markers, which refer to keys by index in ``e`` then ``x`` (``x`` and ``m``
        left out when empty)."""
        if not self.markers and self._encoded is not None and self._encoded[0] == self.version:
            return self._encoded[1]
        entries = sorted(self.entries.items())
        extra: set[Key] = set(self.markers)
        for marker in self.markers.values():
            extra |= {marker.owner} | marker.seen | marker.done
        others = sorted(extra.difference(self.entries))
        index = {key: i for i, key in enumerate([key for key, _ in entries] + others)}

        def refs(group: set[Key]) -> list[int]:
            return sorted(index[key] for key in group)

        body: dict[str, Any] = {"e": [[node, epoch, p, n] for (node, epoch), (p, n) in entries]}
        if others:
            body["x"] = [[node, epoch] for node, epoch in others]
        if self.markers:
            body["m"] = [
                [
                    index[key],
                    index[m.owner],
                    refs(m.seen),
                    int(m.performed),
                    m.at,
                    refs(m.done),
                    m.generation,
                ]
                for key, m in sorted(self.markers.items())
            ]
        encoded = json.dumps(body, separators=(",", ":")).encode()
        if not self.markers:
            self._encoded = (self.version, encoded)
        return encoded

    @classmethod
    def decode(cls, body: bytes) -> CompactCounter:
        data = json.loads(body)
        rows = data["e"]
        table: list[Key] = [(int(row[0]), float(row[1])) for row in rows]
        table += [(int(node), float(epoch)) for node, epoch in data.get("x", ())]
        entries = {table[i]: (int(row[2]), int(row[3])) for i, row in enumerate(rows)}
        markers = {
            table[i]: Marker(
                table[owner],
                {table[s] for s in seen},
                bool(performed),
                float(at),
                {table[d] for d in done},
                int(generation),
            )
            for i, owner, seen, performed, at, done, generation in data.get("m", ())
        }
        return cls(entries, markers)

    def canonical(self) -> tuple[Any, ...]:
        return (
            sorted(self.entries.items()),
            [(k, m.canonical()) for k, m in sorted(self.markers.items())],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactCounter):
            return NotImplemented
        return self.canonical() == other.canonical()

    def __repr__(self) -> str:
        return f"CompactCounter{self.canonical()}"

    def copy(self) -> CompactCounter:
        return CompactCounter(self.entries, self.markers)


#: CompactCounter.decode for ``receive``: its answer is shared, never to be changed
#: (``merge`` copies the markers it takes and only reads the entries).
_received = remembering(CompactCounter.decode)


class CompactReplica:
    """One node: a :class:`CompactCounter`, gossiped whole at every sync, that folds away
    the entries of the incarnations retired through it, its own predecessors included."""

    def __init__(self, node_id: int, marker_ttl: float = 60.0) -> None:
        self.node_id = node_id
        self.marker_ttl = marker_ttl
        self.key: Key | None = None  # this incarnation's, fixed at its first call
        self.awaiting: tuple[int, ...] = ()  # ids retired here before any of theirs was known
        self.acked: tuple[Key, ...] = ()  # performed markers whose ``done`` others know has me
        self.state = CompactCounter()

    def incarnation(self, now: float) -> Key:
        """This incarnation's key; the first call fixes it and announces the membership."""
        if self.key is None:
            self.key = (self.node_id, round(float(now), 6))
            self.state.entries.setdefault(self.key, (0, 0))
            self.state.changed()
        return self.key

    def login(self, user: str, now: float) -> None:
        self.state.add(self.incarnation(now), positive=1)

    def logout(self, user: str, now: float) -> None:
        self.state.add(self.incarnation(now), negative=1)

    def heartbeat(self, user: str, now: float) -> None:
        return None

    def count(self, now: float) -> int:
        return max(0, self.state.value())  # clamped as pncounter's (see there)

    def retire(self, node_id: int, now: float) -> None:
        """Start folding every incarnation of ``node_id`` into this replica's entry (see
        the module docstring); if none is known yet, the first one to arrive."""
        if node_id == self.node_id:
            raise ValueError("a replica cannot retire itself")
        me, state = self.incarnation(now), self.state
        known = any(key[0] == node_id for key in (*state.entries, *state.markers))
        if not known and node_id not in self.awaiting:
            self.awaiting = (*self.awaiting, node_id)
        for key in sorted(state.entries):
            if key[0] == node_id and key not in state.markers:
                state.markers[key] = Marker(me, {me})
        self.advance(now)

    def retiring(self) -> list[Key]:
        return sorted(self.state.markers)

    def advance(self, now: float) -> None:
        """Retire predecessors and awaited ids, acknowledge markers, perform the folds this
        incarnation owns, take over the markers of dead owners whose entries went into its
        own, drop old markers."""
        me = self.incarnation(now)
        state, markers = self.state, self.state.markers
        if state.arrived:  # foreign keys enter only by merge: look at each once
            fresh, state.arrived = set(state.arrived), []
            arrived: set[int] = set()
            for key in sorted(fresh):
                node, epoch = key
                if key in markers or key not in state.entries:
                    continue
                if node in self.awaiting or (node == self.node_id and epoch < me[1]):
                    markers[key] = Marker(me, {me})
                    arrived.add(node)
            if arrived:
                self.awaiting = tuple(node for node in self.awaiting if node not in arrived)
        if not markers:  # the common case: no retirement in progress
            self.acked = ()
            return
        members = state.members()
        for key in sorted(markers):
            marker = markers[key]
            marker.seen.add(me)
            if not marker.performed and marker.owner == me and marker.seen >= members:
                p, n = state.entries.get(key, (0, 0))
                own_p, own_n = state.entries.get(me, (0, 0))
                state.entries[me] = (own_p + p, own_n + n)
                state.changed()
                marker.performed, marker.at, marker.done = True, now, {me}
        for key in sorted(markers):
            marker = markers[key]
            if not marker.performed and marker.owner != me and state.heir(marker.owner) == me:
                markers[key] = Marker(me, {me}, generation=marker.generation + 1)
        for key in sorted(markers):
            marker = markers[key]
            if marker.performed:
                marker.done.add(me)
                expired = now - marker.at > self.marker_ttl
                if key in self.acked and marker.done >= members and expired:
                    state.forget(key)
        if any(key not in markers for key in self.acked):
            self.acked = tuple(key for key in self.acked if key in markers)

    def sync(self, now: float) -> list[Message]:
        self.advance(now)
        # Every performed marker held now has this replica in ``done`` and leaves with it.
        self.acked = tuple(sorted(k for k, m in self.state.markers.items() if m.performed))
        return [Message(self.node_id, None, self.state.encode())]

    def receive(self, message: Message, now: float) -> list[Message]:
        me, theirs, markers = self.incarnation(now), _received(message.body), self.state.markers
        # Performed markers the sender knows this replica is done with: acknowledged, or,
        # if not held any more, dropped here already (a late copy, not taken back).
        known = [
            key
            for key, marker in sorted(theirs.markers.items())
            if marker.performed and me in marker.done and key not in self.acked
        ]
        dropped = [key for key in known if key not in markers]
        self.state.merge(theirs)
        for key in dropped:
            self.state.forget(key)
        if len(dropped) < len(known):
            self.acked = (*self.acked, *(key for key in known if key in markers))
        self.advance(now)
        return []


class CompactStrategy(ReplicatedStrategy):
    name = "compact"
    summary = "PN-counter that folds retired replicas' entries away (Akka-style pruning)."
    specification = BALANCE
    replica_class = CompactReplica
