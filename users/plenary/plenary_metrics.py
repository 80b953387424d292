"""Plenary (group chat) measurement: message stamps, per-receiver order checks, delivery completeness.

Pure logic, no Locust or network imports. Definitions (see DESIGN.md):

- Every chat message carries a stamp inside its text: sender id, per-sender sequence number, wall-clock
  send time, and the sending process's tag with its ``perf_counter`` time. Only pairs on one clock are
  timed (fan-out latency): the sender's own echo and receivers in the same process.
- **Expected**: for each message, the members of its room at send time. A member counts only when it was
  in the room from ``drain`` seconds before until ``drain`` seconds after the send (the drain period), so
  people joining or leaving around a message neither count as losses nor as deliveries.
- **Delivered**: first receptions by such members. **Lost** = expected - delivered.
- **Duplicates**: a message received again by the same receiver. **Out of order**: a message that
  arrives after a later message of the same sender, at the same receiver.

Participants publish records (MessageSent, Joined, Left, Reception; users/common/records.py); the plenary
report files them in a PlenaryStats per process; workers send theirs to the master (send times, membership spells,
counters, fan-out histograms) and the master computes the expected count from all of them.
"""

from __future__ import annotations

import bisect
import os
import time
from dataclasses import dataclass
from typing import Any

from core.histogram import Histogram

STAMP_MARK = "#csw"
"""How a stamped message text starts; texts without it (people in the room, other tools) are ignored."""

PROCESS_TAG = os.urandom(4).hex()
"""This process's tag: receivers with the same tag share the sender's perf_counter clock."""

MAX_TRACKED_GAP = 10_000
"""Missing sequence numbers remembered per sender and receiver (beyond, late arrivals go uncounted)."""


@dataclass(frozen=True, slots=True)
class Stamp:
    """The measurement data a chat message carries in its text."""

    sender: int
    seq: int
    sent_wall: float
    """Epoch seconds (the sender's wall clock) when it was sent."""
    process: str
    sent_perf_ns: int
    """``perf_counter_ns()`` of the sending process at send time."""


def stamp_text(sender: int, seq: int, size: int, now_wall: float | None = None, now_perf_ns: int | None = None) -> str:
    """A message text of ``size`` characters (or the stamp alone, when longer) carrying its stamp."""
    wall = time.time() if now_wall is None else now_wall
    perf = time.perf_counter_ns() if now_perf_ns is None else now_perf_ns
    head = f"{STAMP_MARK} {sender} {seq} {wall:.6f} {PROCESS_TAG} {perf} "
    return head + "x" * max(0, size - len(head))


def read_stamp(text: str) -> Stamp | None:
    """The stamp of a message text, or None for a text that carries none."""
    if not text.startswith(STAMP_MARK):
        return None
    parts = text.split(" ", 6)
    if len(parts) < 6:
        return None
    try:
        return Stamp(int(parts[1]), int(parts[2]), float(parts[3]), parts[4], int(parts[5]))
    except ValueError:
        return None


@dataclass(slots=True)
class Reception:
    """A record: one message received by one participant."""

    first: bool
    """False for a duplicate (a copy already received)."""
    out_of_order: bool = False
    stable: bool = False
    """Received in a stable membership spell (counts as delivered), rather than in transition."""
    fanout: str | None = None
    """``echo`` or ``peers`` when timed (sender and receiver on one clock), with ``latency_ms``."""
    latency_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class MessageSent:
    """A record: a participant sent a message to a room."""

    room: str
    sent_wall: float


@dataclass(frozen=True, slots=True)
class Joined:
    """A record: a participant joined a room."""


@dataclass(frozen=True, slots=True)
class Left:
    """A record: a participant left a room (``joined`` None when it never got in); ``late`` receptions of the
    last drain period were in transition after all."""

    room: str
    joined: float | None
    left: float
    late: int


class ReceiverLog:
    """One receiver's view of the room: per sender, the highest sequence seen and the gaps below it.

    Also holds the receiver's current membership spell, so each first reception can be judged
    stable (counts as delivered) or in transition (joined or leaving within the drain period).
    """

    __slots__ = ("drain_s", "gaps", "highest", "joined_at", "recent")

    def __init__(self, drain_s: float) -> None:
        self.drain_s = drain_s
        self.highest: dict[int, int] = {}
        """Per sender, the highest sequence number received."""
        self.gaps: dict[int, set[int]] = {}
        """Per sender with a gap below its highest, the missing numbers. Only those: a participant hears every
        other member of its room, and a list and an empty set per sender would cost it ~300 bytes each."""
        self.joined_at: float | None = None
        self.recent: list[float] | None = None
        """Send times of stable receptions within the last drain period (re-judged if we leave); made on
        the first one. A list, not a deque: a deque takes 600 bytes for one entry, and idle participants are
        many."""

    def receive(self, stamp: Stamp) -> Reception:
        """Judge one reception: a first copy or a duplicate, in order or not, stable or in transition."""
        sender, seq = stamp.sender, stamp.seq
        highest = self.highest.get(sender)
        out_of_order = False
        if highest is None or seq > highest:
            if highest is not None and 1 <= seq - highest - 1 <= MAX_TRACKED_GAP:
                self.gaps.setdefault(sender, set()).update(range(highest + 1, seq))
            self.highest[sender] = seq
        else:
            gaps = self.gaps.get(sender)
            if gaps is None or seq not in gaps:
                return Reception(first=False)
            gaps.discard(seq)
            if not gaps:
                del self.gaps[sender]
            out_of_order = True
        return Reception(first=True, out_of_order=out_of_order, stable=self._stable(stamp.sent_wall))

    def _stable(self, sent_wall: float) -> bool:
        joined = self.joined_at
        if joined is None or sent_wall < joined + self.drain_s:
            return False
        recent = self.recent
        if recent is None:
            recent = self.recent = []
        recent.append(sent_wall)
        horizon = sent_wall - 2 * self.drain_s - 5.0  # a margin for clocks of other machines
        if recent[0] < horizon:
            expired = next((i for i, sent in enumerate(recent) if sent >= horizon), len(recent))
            del recent[:expired]
        return True

    def join(self, now_wall: float) -> None:
        self.joined_at = now_wall
        self.recent = None

    def leave(self, room: str, now_wall: float) -> Left:
        """End the membership spell: messages sent within the drain period before it were in transition."""
        joined, self.joined_at = self.joined_at, None
        if joined is None:
            return Left(room, None, now_wall, 0)
        cutoff = now_wall - self.drain_s
        late = sum(1 for sent in self.recent or () if sent > cutoff)
        self.recent = None
        return Left(room, joined, now_wall, late)


class PlenaryStats:
    """Everything measured about plenary rooms in one process (or merged from several)."""

    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = {}
        """Per room, the wall-clock send time of every message."""
        self.spells: list[tuple[str, float, float]] = []
        """Finished membership spells: (room, joined, left) in wall-clock seconds."""
        self.delivered = 0
        self.in_transition = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.joins = 0
        self.leaves = 0
        self.fanout = {"echo": Histogram(), "peers": Histogram()}

    def message_sent(self, room: str, sent_wall: float) -> None:
        self.sent.setdefault(room, []).append(sent_wall)

    def add_sent(self, record: MessageSent) -> None:
        self.message_sent(record.room, record.sent_wall)

    def add_joined(self, _record: Joined) -> None:
        self.joins += 1

    def add_left(self, record: Left) -> None:
        self.leaves += 1
        if record.joined is not None:
            self.delivered -= record.late
            self.in_transition += record.late
            self.spells.append((record.room, record.joined, record.left))

    def add_reception(self, record: Reception) -> None:
        if not record.first:
            self.duplicates += 1
            return
        self.out_of_order += record.out_of_order
        if record.stable:
            self.delivered += 1
        else:
            self.in_transition += 1
        if record.fanout is not None:
            self.fanout[record.fanout].add(record.latency_ms)

    @property
    def messages_sent(self) -> int:
        return sum(len(times) for times in self.sent.values())

    @property
    def empty(self) -> bool:
        return not (self.sent or self.spells or self.joins or self.delivered or self.in_transition or self.duplicates)

    def to_message(self) -> dict[str, Any]:
        """A compact, msgpack-friendly form for sending to the master."""
        return {
            "sent": self.sent,
            "spells": [list(spell) for spell in self.spells],
            "counts": [
                self.delivered,
                self.in_transition,
                self.duplicates,
                self.out_of_order,
                self.joins,
                self.leaves,
            ],
            "fanout": {name: list(h.counts.items()) for name, h in self.fanout.items()},
        }

    def merge_message(self, message: dict[str, Any]) -> None:
        """Add a worker's figures sent with to_message."""
        for room, times in message["sent"].items():
            self.sent.setdefault(room, []).extend(times)
        self.spells.extend((room, joined, left) for room, joined, left in message["spells"])
        delivered, in_transition, duplicates, out_of_order, joins, leaves = message["counts"]
        self.delivered += delivered
        self.in_transition += in_transition
        self.duplicates += duplicates
        self.out_of_order += out_of_order
        self.joins += joins
        self.leaves += leaves
        for name, pairs in message["fanout"].items():
            self.fanout[name].merge(pairs)

    def expected(self, drain_s: float) -> int:
        """Receptions due: for each spell, the messages of its room sent while it was stably in the room."""
        ordered = {room: sorted(times) for room, times in self.sent.items()}
        due = 0
        for room, joined, left in self.spells:
            times = ordered.get(room)
            if times and left - joined > 2 * drain_s:
                due += bisect.bisect_right(times, left - drain_s) - bisect.bisect_left(times, joined + drain_s)
        return due

    def summary(self, drain_s: float) -> dict[str, Any]:
        """The ``plenary`` section of summary.json."""
        expected = self.expected(drain_s)
        delivered = self.delivered
        return {
            "messages_sent": self.messages_sent,
            "expected": expected,
            "delivered": delivered,
            "lost": max(0, expected - delivered),
            "completeness": round(delivered / expected, 6) if expected else None,
            "duplicates": self.duplicates,
            "out_of_order": self.out_of_order,
            "in_transition": self.in_transition,
            "joins": self.joins,
            "leaves": self.leaves,
            "drain_s": drain_s,
            "fanout_ms": {name: h.summary() for name, h in self.fanout.items()},
        }
