"""Review: the queue of labels worth a second look, and reviewers' decisions as events.

The queue, best first: the open suspects of the latest likely-label-error run (a model's
out-of-fold probabilities doubt the label, ``flow.label_errors``; most doubtful first),
then the items whose labelers disagree (no consensus first, then the least confident
consensus), then a spot-check sample of the items labeled once (``review_sample`` of the
project). An item a reviewer decided leaves the queue until a labeler labels it again.

A decision is one event in ``label_events`` (``review``): *accepted* (the label stands),
*corrected* (a new label; the labelers' events stay), or *sent_back* (with a comment: the
item goes back to labeling for the next labeler who asks, before new items, the labels
before it set aside). Accepted and corrected labels are final: the item's state is the
decision (``reviewed``) and labelers can no longer change it; only another decision does.

Spans and boxes (``labeling.annotations``): a label is a list, and labelers agree on
identical spans, or on boxes that pair up at the consensus IoU (``store.consensus``). The
card gives each labeler's own list decoded (under
the task's field, ``spans`` or ``boxes``) beside its stored text, and the proposed one; a
correction sends a whole list, checked against the item as a labeler's is (on token
bounds, inside the image...: a 422 naming the field, nothing written). Audio is reviewed
as classification.

Two reviewers: the queue holds each item it shows to one reviewer for a few minutes (in
memory, soft), and a decision names the item's state it was taken on (``seen_event_id``,
on every card): a decision on an item that changed since, or that someone decided first,
is refused (409) and the first decision stays. Everything runs under the labeling
service's lock, on its connection, in one transaction per decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from active_labeling.errors import InputError
from active_labeling.labeling.annotations import decoded_or_none
from active_labeling.labeling.service import (
    ConflictError,
    LabelingService,
    _json_value,
    _now,
    decode_labels,
)
from active_labeling.store import item_state
from active_labeling.store.connection import transaction
from active_labeling.store.consensus import (
    ConsensusRule,
    canonical_annotation,
    decide,
    read_events,
)
from active_labeling.store.labels import record_item_state

#: How long the queue keeps an item it showed for the reviewer it showed it to.
HOLD_MINUTES = 10
#: Why an item is in the queue, in queue order.
REASONS = ("suspect", "disagreement", "sample")
DECISIONS = {"accept": "accepted", "correct": "corrected", "send_back": "sent_back"}


@dataclass(frozen=True)
class _Hold:
    reviewer: str
    expires_at: datetime


def sample_threshold(share: float) -> int:
    """The draw of the spot-check sample: an item is in it when the lower 64 bits of
    md5('review' NUL dataset NUL item_id), read little-endian (DuckDB's
    ``md5_number_lower``), fall under this. Stable across restarts and versions."""
    return min(int(share * 2**64), 2**64 - 1)


class ReviewDesk:
    """The review queue and the decisions of one labeling service's dataset."""

    def __init__(self, service: LabelingService, *, hold_minutes: float = HOLD_MINUTES):
        self.service = service
        self.hold = timedelta(minutes=hold_minutes)
        self.holds: dict[str, _Hold] = {}

    @property
    def con(self):
        return self.service.con

    @property
    def dataset(self) -> str:
        return self.service.dataset

    def rule(self) -> ConsensusRule:
        return ConsensusRule.for_dataset(self.service.project, self.dataset)

    # -- the queue ----------------------------------------------------------------------------
    def _holder(self, item_id: str, now: datetime) -> str | None:
        hold = self.holds.get(item_id)
        if hold is None or hold.expires_at <= now:
            self.holds.pop(item_id, None)
            return None
        return hold.reviewer

    def _suspects(self) -> pd.DataFrame:
        """The open suspects of the latest run on the dataset: those whose item's state is
        still the labeled event that was scored (nobody touched the item since)."""
        return self.con.execute(
            "WITH latest AS (SELECT model_name, model_version FROM label_error_runs "
            "WHERE dataset = ? ORDER BY scored_at DESC LIMIT 1) "
            "SELECT s.item_id, s.model_name, s.model_version, s.label, s.suggested, "
            "s.self_confidence, s.rank FROM label_suspects s JOIN latest USING "
            "(model_name, model_version) JOIN item_state t ON t.dataset = s.dataset AND "
            "t.item_id = s.item_id AND t.event_id = s.label_event_id AND t.status = 'labeled' "
            "WHERE s.dataset = ? ORDER BY s.rank",
            [self.dataset, self.dataset],
        ).df()

    def _disagreement_candidates(self) -> list[str]:
        """Items two labelers or more gave different labels, not decided since (a superset:
        the replay in ``store.consensus`` tells the live labels)."""
        rows = self.con.execute(
            "SELECT e.item_id FROM label_events e JOIN item_state s ON s.dataset = e.dataset "
            "AND s.item_id = e.item_id WHERE e.dataset = ? AND e.review IS NULL "
            "AND e.status = 'labeled' AND s.status IN ('labeled', 'skipped') GROUP BY e.item_id "
            "HAVING count(DISTINCT e.annotator) >= 2 AND count(DISTINCT e.label) >= 2",
            [self.dataset],
        ).fetchall()
        return [r[0] for r in rows]

    def _sample(self, limit: int) -> tuple[list[str], int]:
        """Items labeled by one labeler and not decided, drawn for a spot check; (the first
        ``limit`` in labeling order, how many in all)."""
        share = self.service.project.settings.review_sample
        if share <= 0:
            return [], 0
        query = (
            "FROM item_state WHERE dataset = ? AND status = 'labeled' AND "
            "md5_number_lower('review' || chr(0) || dataset || chr(0) || item_id) < ?::UBIGINT "
            "AND item_id NOT IN (SELECT item_id FROM label_events WHERE dataset = ? AND "
            "review IS NULL AND status = 'labeled' GROUP BY item_id "
            "HAVING count(DISTINCT annotator) >= 2)"
        )
        args = [self.dataset, sample_threshold(share), self.dataset]
        total = self.con.execute(f"SELECT count(*) {query}", args).fetchone()[0]
        rows = self.con.execute(
            f"SELECT item_id {query} ORDER BY event_id LIMIT ?", [*args, limit]
        ).fetchall()
        return [r[0] for r in rows], total

    def queue(self, limit: int = 50) -> tuple[list[tuple[str, list[str]]], dict]:
        """The queue's first ``limit`` items (item, reasons) and its size per reason (call
        under the service's lock)."""
        suspects = self._suspects()
        candidates = self._disagreement_candidates()
        decided = decide(read_events(self.con, self.dataset, item_ids=candidates), self.rule())
        items = decided.items
        split = items[(items["n_labels"] >= 2) & ~items["unanimous"].astype(bool)]
        split = split[split["review"].isna()]
        split = split.assign(disputed=split["label"].isna()).sort_values(
            ["disputed", "consensus_confidence", "state_event_id"],
            ascending=[False, True, True],
            kind="stable",
        )
        sample, n_sample = self._sample(limit + len(self.holds))
        reasons: dict[str, list[str]] = {}
        for reason, ids in (
            ("suspect", suspects["item_id"].tolist()),
            ("disagreement", split["item_id"].tolist()),
            ("sample", sample),
        ):
            for item in ids:
                reasons.setdefault(item, []).append(reason)
        totals = {
            "suspect": len(suspects),
            "disagreement": len(split),
            "sample": n_sample,
        }
        return list(reasons.items())[: limit + len(self.holds)], totals

    def next_items(self, reviewer: str, count: int = 5) -> dict:
        """The next items to review, held for ``reviewer``: theirs first, then the queue's
        best that no other reviewer holds. With the queue's size per reason."""
        count = max(1, min(int(count), 20))
        service = self.service
        with service.lock:
            now = _now()
            ranked, totals = self.queue(limit=count + 20)
            mine = [(i, r) for i, r in ranked if self._holder(i, now) == reviewer]
            free = [(i, r) for i, r in ranked if self._holder(i, now) is None]
            chosen = (mine + free)[:count]
            for item, _ in chosen:
                self.holds[item] = _Hold(reviewer, now + self.hold)
            cards = self._cards([i for i, _ in chosen], dict(chosen))
        return {"items": cards, "totals": totals, "done": not cards}

    def _cards(self, item_ids: list[str], reasons: dict[str, list[str]]) -> list[dict]:
        """Review cards (call under the lock): the item's card, its labels, consensus,
        suspicion, the label Enter accepts, and the state the decision must be taken on."""
        service = self.service
        if not item_ids:
            return []
        rows = service._read_items(item_ids, labels=False)
        base = {
            card["item_id"]: card for card in service._assemble(rows, hint=False, generation=None)
        }
        events = read_events(self.con, self.dataset, item_ids=item_ids)
        decided = decide(events, self.rule())
        items = decided.items.set_index("item_id")
        votes = decided.votes
        suspects = self._suspects().set_index("item_id")
        rule = self.rule()
        # Spans and boxes: each list also decoded, under the task's field, for the page.
        field = service.task.field if service.task.structured else None
        cards = []
        for item_id in item_ids:
            if item_id not in base or item_id not in items.index:
                continue
            row = items.loc[item_id]
            mine = votes[votes["item_id"] == item_id]
            card = dict(base[item_id])
            card["reasons"] = reasons.get(item_id, [])
            card["labels"] = [
                {
                    "annotator": v.annotator,
                    "label": service._shown_label(v.drawn),
                    "comment": _json_value(v.comment),
                    "created_at": _json_value(v.created_at),
                    **({field: decoded_or_none(v.drawn, field)} if field else {}),
                }
                for v in mine.itertuples(index=False)
            ]
            consensus = _json_value(row["consensus_label"])
            card["consensus"] = (
                {
                    "label": service._shown_label(consensus),
                    "confidence": _json_value(row["consensus_confidence"]),
                    "method": rule.method_used,
                    "unanimous": bool(row["unanimous"]),
                    **({field: decoded_or_none(consensus, field)} if field else {}),
                }
                if row["n_labels"] >= 2
                else None
            )
            suspect = suspects.loc[item_id] if item_id in suspects.index else None
            card["suspect"] = (
                None
                if suspect is None
                else {
                    "model": str(suspect["model_name"]),
                    "model_version": str(suspect["model_version"]),
                    "suggested": service._shown_label(str(suspect["suggested"])),
                    "self_confidence": float(suspect["self_confidence"]),
                    "rank": int(suspect["rank"]),
                }
            )
            card["proposed_label"] = service._shown_label(_json_value(row["label"]))
            card["seen_event_id"] = int(row["state_event_id"])
            card["current_label"] = card["proposed_label"]
            if field:  # what Enter accepts, as a list (None: disputed)
                card[field] = decoded_or_none(card["proposed_label"], field)
            cards.append(card)
        return cards

    # -- decisions ------------------------------------------------------------------------------
    def decide(
        self,
        reviewer: str,
        item_id: str,
        decision: str,
        *,
        label: str | None = None,
        comment: str | None = None,
        seen_event_id: int | None = None,
    ) -> dict:
        """Write one decision on ``item_id`` (see the module's docstring); what was written.

        ``label``: the class a correction gives (a multi-label project: its JSON list; spans
        and boxes: the JSON list, checked against the item here).
        ``seen_event_id``: the item's state event the reviewer saw (every card has it).
        """
        if decision not in DECISIONS:
            raise InputError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        comment = comment.strip() if comment else None
        if decision == "send_back" and not comment:
            raise InputError("comment: a send-back needs a comment, which the next labeler sees")
        service = self.service
        structured = service.task.structured
        if decision == "correct":
            self._check_label(label)
        elif label is not None:
            raise InputError(f"label: only a correction gives a label, not {decision!r}")
        with service.lock:
            service._check_item(item_id)
            if decision == "correct" and structured:  # on token bounds, inside the image...
                label = service.task.check(item_id, label)
            now = _now()
            holder = self._holder(item_id, now)
            if holder not in (None, reviewer):
                raise ConflictError(f"item {item_id!r} is being reviewed by {holder}")
            state = self.con.execute(
                "SELECT event_id, status, label, annotator FROM item_state "
                "WHERE dataset = ? AND item_id = ?",
                [self.dataset, item_id],
            ).fetchone()
            self._check_seen(item_id, state, seen_event_id)
            decided = decide(read_events(self.con, self.dataset, item_ids=[item_id]), self.rule())
            if decided.items.empty:
                raise ConflictError(
                    f"item {item_id!r}: nobody labeled it (or a reviewer sent it back since): "
                    "there is no label to review"
                )
            current = decided.items.iloc[0]["label"]
            review = DECISIONS[decision]
            if decision == "accept":
                if current is None:
                    raise ConflictError(
                        f"item {item_id!r}: its labelers disagree and there is no consensus "
                        "to accept: choose a class (correct)"
                    )
                label = current
            elif decision == "correct" and self._same(label, current):
                review = "accepted"  # the label the item has already: a correction of nothing
                label = current
            event_id = self._append(item_id, reviewer, review, label, comment)
            self.holds.pop(item_id, None)
        return {
            "event_id": event_id,
            "item_id": item_id,
            "review": review,
            "label": service._shown_label(label),
            "previous_label": service._shown_label(_json_value(current)),
        }

    def _same(self, label: str, current) -> bool:
        """Whether a correction gives the item the label it has (spans and boxes: the same
        list, whatever order it was drawn in)."""
        if current is None:
            return False
        task = self.service.task
        if task.structured:
            return canonical_annotation(label, task.kind) == canonical_annotation(
                current, task.kind
            )
        return label == current

    def _check_label(self, label: str | None) -> None:
        service = self.service
        if service.task.structured:
            if label is None:
                field = service.task.field
                raise InputError(
                    f"{field}: a correction needs the {field} the item should have (a list, "
                    "empty when there is nothing to mark)"
                )
            return  # checked against the item, under the lock (decide)
        if label is None:
            raise InputError("label: a correction needs the class the item should have")
        if service.multi_label:
            decode_labels(label, service.classes)
        elif label not in service.classes:
            raise InputError(
                f"label: {label!r} is not one of the classes ({', '.join(service.classes)})"
            )

    def _check_seen(self, item_id: str, state, seen_event_id: int | None) -> None:
        """The decision is taken on the state the reviewer saw; a decision taken first by
        someone else stays (ConflictError naming it)."""
        if state is None:
            raise ConflictError(f"item {item_id!r}: nobody labeled it: there is no label to review")
        if seen_event_id is not None and int(seen_event_id) == state[0]:
            return
        if state[1] == "reviewed":
            raise ConflictError(
                f"item {item_id!r} was decided by {state[3]} (label {state[2]!r}) since you "
                "opened it: reload it to see the decision (send its seen_event_id to change it)"
            )
        if seen_event_id is not None:
            raise ConflictError(
                f"item {item_id!r} changed since you opened it (seen_event_id {seen_event_id}, "
                f"now {state[0]}): reload it"
            )

    def _append(self, item_id: str, reviewer: str, review: str, label, comment) -> int:
        """The decision's event and the item's new state, in one transaction; then the
        handout index, once committed."""
        service = self.service
        status = "undone" if review == "sent_back" else "labeled"
        with transaction(self.con):
            event_id, created_at = self.con.execute(
                "INSERT INTO label_events (dataset, item_id, label, status, annotator, comment, "
                "review) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING event_id, created_at",
                [self.dataset, item_id, label, status, reviewer, comment, review],
            ).fetchone()
            if review == "sent_back":
                item_state.settle(self.con, self.dataset, item_id)
            else:
                record_item_state(
                    self.con,
                    dataset=self.dataset,
                    item_id=item_id,
                    event_id=event_id,
                    status="reviewed",
                    label=label,
                    annotator=reviewer,
                    created_at=created_at,
                )
                self.con.execute(
                    "DELETE FROM leases WHERE dataset = ? AND item_id = ?", [self.dataset, item_id]
                )
        if review == "sent_back":
            service.index.send_back(item_id)
        else:
            service.index.recorded(item_id, "reviewed", reviewer)
        return event_id

    # -- history --------------------------------------------------------------------------------
    def history(self, item_id: str) -> list[dict]:
        """Every event of the item, oldest first, reviewers' decisions included."""
        service = self.service
        with service.lock:
            service._check_item(item_id)
            events = read_events(self.con, self.dataset, item_ids=[item_id])
        keys = ("event_id", "label", "status", "review", "annotator", "created_at", "comment")
        return [
            {
                key: (
                    service._shown_label(_json_value(getattr(row, key)))
                    if key == "label"
                    else _json_value(getattr(row, key))
                )
                for key in keys
            }
            for row in events.itertuples(index=False)
        ]

    def state_event_id(self, item_id: str) -> int | None:
        """The event the item's state is (what a decision names as ``seen_event_id``)."""
        with self.service.lock:
            row = self.con.execute(
                "SELECT event_id FROM item_state WHERE dataset = ? AND item_id = ?",
                [self.dataset, item_id],
            ).fetchone()
        return None if row is None else row[0]

    def summary(self) -> dict:
        """The queue's size per reason, and the decisions taken so far per kind."""
        with self.service.lock:
            _, totals = self.queue(limit=0)
            rows = self.con.execute(
                "SELECT review, count(*) FROM label_events WHERE dataset = ? AND review IS NOT "
                "NULL GROUP BY review",
                [self.dataset],
            ).fetchall()
        return {"queue": totals, "decisions": {r[0]: r[1] for r in rows}}


def decision_note(events: list[dict]) -> dict | None:
    """The latest decision among an item's events (from :meth:`ReviewDesk.history`)."""
    for event in reversed(events):
        if event.get("review"):
            return {
                "review": event["review"],
                "reviewer": event["annotator"],
                "label": event["label"],
                "comment": event["comment"],
                "at": event["created_at"],
            }
    return None
