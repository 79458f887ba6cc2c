"""Which items are free, in memory: the handout's hot path without a query per request.

The store stays the source of truth: every lease and every label event is written there,
in one transaction, before this index is told. The index is built from the store when the
server starts (so a restart neither loses nor duplicates work) and is then kept in step by
the labeling service, the only writer while the server runs. It knows:

- the items labeled or skipped (``touched``), and not undone since;
- the live leases: item -> (annotator, leased_at, expires_at);
- the latest queue generation as a ranked list, with a cursor before which every item is
  touched or leased. Handing out walks from the cursor; a lease that expires or an undo
  moves the cursor back to the item's rank, so the item is offered again;
- with overlap on, the items chosen for a second opinion that one labeler has labeled: they
  go to another labeler (never the first) before new items, so that agreement between
  labelers can be measured;
- the items a reviewer sent back (``returned``): they go to the next labeler who asks,
  before anything else, until one labels or skips them.

Examples
--------
>>> from datetime import datetime, timedelta, timezone
>>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> index = HandoutIndex(touched={"b"}, leases={})
>>> index.set_queue(7, ["a", "b", "c", "d"])
>>> index.free_in_queue(2, now)
['a', 'c']
>>> index.lease("a", "ann", now, now + timedelta(minutes=10))
>>> index.free_in_queue(2, now)
['c', 'd']
>>> index.free_in_queue(2, now + timedelta(minutes=11))  # a's lease expired
['a', 'c']
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Lease:
    annotator: str
    leased_at: datetime
    expires_at: datetime
    generation_id: int | None = None
    score: float | None = None
    model_version: str | None = None


class HandoutIndex:
    """Touched items, live leases and the ranked queue, kept in memory.

    Not thread-safe by itself: the labeling service calls it under its lock.
    """

    def __init__(
        self,
        touched: Iterable[str],
        leases: dict[str, Lease],
        *,
        overlap: Callable[[str], bool] | None = None,
    ):
        self.touched: set[str] = set(touched)
        self.overlap = overlap
        # Overlap items: who labeled them; those with one labeler wait for a second, in order.
        self.labelers: dict[str, set[str]] = {}
        self.waiting: dict[str, None] = {}
        # Items a reviewer sent back, in the order they were sent back.
        self.returned: dict[str, None] = {}
        self.leases: dict[str, Lease] = dict(leases)
        self._expiry: list[tuple[datetime, str]] = [
            (lease.expires_at, item) for item, lease in self.leases.items()
        ]
        heapq.heapify(self._expiry)
        self.generation_id: int | None = None
        self._order: list[str] = []
        self._scores: list[float | None] = []
        self._rank: dict[str, int] = {}
        self._cursor = 0
        self._left = 0  # queue items neither touched (leased ones count as left)

    # -- the queue ----------------------------------------------------------------------------
    def set_queue(
        self, generation_id: int | None, ranked: list[str], scores: list[float] | None = None
    ) -> None:
        """Take up a queue generation: its item ids, best first, and their scores."""
        self.generation_id = generation_id
        self._order = list(ranked)
        self._scores = list(scores) if scores is not None else [None] * len(self._order)
        self._rank = {item: i for i, item in enumerate(self._order)}
        self._cursor = 0
        self._left = sum(1 for item in self._order if item not in self.touched)

    @property
    def left_in_queue(self) -> int:
        """Queue items not labeled or skipped yet (leased ones included)."""
        return self._left

    def rank(self, item_id: str) -> int | None:
        """1-based rank in the current generation, or None."""
        position = self._rank.get(item_id)
        return None if position is None else position + 1

    def score(self, item_id: str) -> float | None:
        """The item's score in the current generation, or None."""
        position = self._rank.get(item_id)
        return None if position is None else self._scores[position]

    def _expire(self, now: datetime) -> None:
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, item = heapq.heappop(self._expiry)
            lease = self.leases.get(item)
            if lease is not None and lease.expires_at == expires_at:
                del self.leases[item]
                self._reopen(item)

    def _reopen(self, item: str) -> None:
        position = self._rank.get(item)
        if position is not None and position < self._cursor:
            self._cursor = position

    def is_free(self, item_id: str, now: datetime) -> bool:
        if item_id in self.touched:
            return False
        lease = self.leases.get(item_id)
        return lease is None or lease.expires_at <= now

    def free_in_queue(self, count: int, now: datetime) -> list[str]:
        """The ``count`` best-ranked free items (fewer when the queue runs out)."""
        self._expire(now)
        order = self._order
        while self._cursor < len(order) and not self.is_free(order[self._cursor], now):
            self._cursor += 1
        found = []
        position = self._cursor
        while len(found) < count and position < len(order):
            if self.is_free(order[position], now):
                found.append(order[position])
            position += 1
        return found

    # -- leases -------------------------------------------------------------------------------
    def held_by(self, annotator: str, now: datetime) -> list[str]:
        """The annotator's live leases on items still to label (by them), in the order they
        were handed out."""
        self._expire(now)
        mine = [
            (lease.leased_at, item)
            for item, lease in self.leases.items()
            if lease.annotator == annotator
            and lease.expires_at > now
            and (item not in self.touched or self._second_for(item, annotator))
        ]
        return [item for _, item in sorted(mine)]

    # -- sent back ----------------------------------------------------------------------------
    def send_back(self, item_id: str) -> None:
        """A reviewer sent the item back (after the commit): free, its labels set aside."""
        self.set_labelers(item_id, set())
        self.recorded(item_id, "undone")
        self.returned[item_id] = None

    def returned_items(self, annotator: str, count: int, now: datetime) -> list[str]:
        """Up to ``count`` sent-back items free for ``annotator`` (not leased to others)."""
        self._expire(now)
        found = []
        for item in self.returned:
            if len(found) == count:
                break
            if item not in self.touched and self.holder(item, now) in (None, annotator):
                found.append(item)
        return found

    # -- overlap ------------------------------------------------------------------------------
    def _second_for(self, item_id: str, annotator: str) -> bool:
        """Whether the item waits for a second label that ``annotator`` may give."""
        return item_id in self.waiting and annotator not in self.labelers[item_id]

    def second_labels(self, annotator: str, count: int, now: datetime) -> list[str]:
        """Up to ``count`` overlap items waiting for a second labeler, not leased to others."""
        self._expire(now)
        found = []
        for item in self.waiting:
            if len(found) == count:
                break
            if self._second_for(item, annotator) and self.holder(item, now) in (None, annotator):
                found.append(item)
        return found

    def set_labelers(self, item_id: str, labelers: set[str]) -> None:
        """Who has a label on an overlap item (after a restart or an undo)."""
        if labelers:
            self.labelers[item_id] = set(labelers)
        else:
            self.labelers.pop(item_id, None)
        if len(labelers) == 1:
            self.waiting[item_id] = None
        else:
            self.waiting.pop(item_id, None)

    def holder(self, item_id: str, now: datetime) -> str | None:
        """Who holds a live lease on the item."""
        lease = self.leases.get(item_id)
        return lease.annotator if lease is not None and lease.expires_at > now else None

    def lease(
        self,
        item_id: str,
        annotator: str,
        leased_at: datetime,
        expires_at: datetime,
        *,
        generation_id: int | None = None,
        score: float | None = None,
        model_version: str | None = None,
    ) -> None:
        self.leases[item_id] = Lease(
            annotator, leased_at, expires_at, generation_id, score, model_version
        )
        heapq.heappush(self._expiry, (expires_at, item_id))

    def renew(self, annotator: str, now: datetime, expires_at: datetime) -> None:
        """Extend every live lease of the annotator."""
        for item, lease in list(self.leases.items()):
            if lease.annotator == annotator and lease.expires_at > now:
                self.lease(
                    item,
                    annotator,
                    lease.leased_at,
                    expires_at,
                    generation_id=lease.generation_id,
                    score=lease.score,
                    model_version=lease.model_version,
                )

    # -- events -------------------------------------------------------------------------------
    def recorded(self, item_id: str, status: str, annotator: str | None = None) -> None:
        """An item's state changed to ``status`` (after a commit): labeled or skipped take
        the item; undone (nothing left to undo) frees it; reviewed (a reviewer's decision)
        takes it for good, second opinion or not. ``annotator`` labeled it."""
        if status == "labeled" and self.overlap is not None and self.overlap(item_id):
            self.set_labelers(item_id, self.labelers.get(item_id, set()) | {annotator})
        if status == "reviewed":
            self.waiting.pop(item_id, None)
        if status != "undone":
            self.returned.pop(item_id, None)
        in_queue = item_id in self._rank
        if status == "undone":
            if item_id in self.touched:
                self.touched.discard(item_id)
                self._left += in_queue
            self._reopen(item_id)
        else:
            if item_id not in self.touched:
                self.touched.add(item_id)
                self._left -= in_queue
            self.leases.pop(item_id, None)
