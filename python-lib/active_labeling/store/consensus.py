"""The label each item ends up with: a reviewer's decision, else its labelers' consensus,
else its one label.

An item's events are replayed as ``store.item_state`` does (undo pops, a send-back sets the
labels before it aside, a reviewer's decision is final). From what is left, each labeler's
live label is their latest action on the item when it is a label (a labeler who skipped
has none); reviewers' decisions are not votes. Then:

- a reviewer's decision (accepted or corrected) gives the label, source ``review``;
- else one labeler's label gives it, source ``labeler``;
- else two or more labels (an overlap item, or any item labeled twice) give their
  consensus (:class:`ConsensusRule`: majority with a tie rule, or Dawid-Skene), source
  ``consensus``; a tie, or a consensus less confident than the rule's threshold, gives no
  label until a reviewer decides, source ``disputed``.

What a vote is depends on the task (``ConsensusRule.task``). Classification and audio
labels are classes, as above. Spans and boxes labels are lists (``labeling.annotations``):
a vote is a whole list, put in a canonical order (spans by offsets, boxes by position).
Spans snap to tokens, so two labelers agree when they marked exactly the same spans with
the same classes; a span one token longer is a disagreement about its bounds. Boxes are
drawn by hand and never land on the same pixels: two lists agree when their boxes pair up
one to one, each pair of one class and overlapping by an IoU of at least ``box_iou``
(PASCAL VOC's 0.5 by default: the same object), the pairing that overlaps most
(``scipy.optimize.linear_sum_assignment``); the lists that agree vote as one, the mean of
their paired boxes (``Decisions.votes`` keeps each labeler's own list as ``drawn``). The
majority is then taken over these lists (three labelers, two agreeing lists: theirs, with a
confidence of 2/3); a tie is always disputed (no class order ranks lists), and Dawid-Skene,
which weighs labelers over a fixed set of classes, gives way to this majority. Lists that
do not agree are never merged (no per-box vote across them): a reviewer decides between
them, or draws the right one.

Training, the query sampler, monitoring and exports read labels through here, so they all
take a decision over the labels under it. The store's ``current_labels`` view stays the
cheap key lookup of each item's top event, for counts. This module never writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.store import item_state

#: What a reviewer decides (``label_events.review``).
REVIEWS = ("accepted", "corrected", "sent_back")
METHODS = ("majority", "dawid_skene")
TIES = ("review", "first")
TASKS = ("classification", "audio", "spans", "boxes")
#: The tasks whose label is a JSON list (``labeling.annotations``), voted as a whole.
STRUCTURED_TASKS = ("spans", "boxes")
#: The fields of a span and of a box, in the order a canonical list sorts them by.
_SORT_FIELDS = {"spans": ("start", "end", "label"), "boxes": ("x", "y", "w", "h", "label")}

#: The columns of :attr:`Decisions.items`, in order.
ITEM_COLUMNS = (
    "item_id",
    "label",
    "label_source",
    "annotator",
    "labeled_at",
    "comment",
    "consensus_label",
    "consensus_confidence",
    "n_labels",
    "unanimous",
    "raw_labels",
    "review",
    "reviewer",
    "reviewed_at",
    "state_event_id",
)
_EVENT_COLUMNS = (
    "event_id",
    "item_id",
    "label",
    "status",
    "annotator",
    "created_at",
    "comment",
    "review",
)


@dataclass(frozen=True)
class ConsensusRule:
    """How the labels of several labelers become one (the project's settings).

    ``method``: ``majority`` or ``dawid_skene`` (labelers weighed by their estimated
    accuracy, fitted on the items labeled twice or more). ``tie``: a majority tie (for
    Dawid-Skene, a posterior of one half or less) gives no label until reviewed
    (``review``) or the tied class first in the project's order (``first``).
    ``threshold``: a consensus less confident than this gives no label until reviewed
    (labelers who all agree always give their label). Multi-label projects take the
    majority per class (Dawid-Skene is single-label). Spans and boxes (``task``) take the
    majority of agreeing lists (spans identical, boxes paired at IoU >= ``box_iou``), a tie
    always disputed (see the module's docstring).
    """

    method: str = "majority"
    tie: str = "review"
    threshold: float = 0.5
    classes: tuple[str, ...] = ()
    multi_label: bool = False
    #: The dataset's task (``flow.project.TASK_TYPES``): spans and boxes vote whole lists.
    task: str = "classification"
    #: Boxes: two boxes of one class are the same object from an IoU of this much.
    box_iou: float = 0.5

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"consensus must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.tie not in TIES:
            raise InputError(f"consensus_tie must be one of {', '.join(TIES)}, got {self.tie!r}")
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise InputError(f"consensus_threshold must be in [0, 1], got {self.threshold!r}")
        if self.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if not 0.0 < float(self.box_iou) <= 1.0:
            raise InputError(f"consensus_iou must be in (0, 1], got {self.box_iou!r}")
        if self.multi_label and self.method == "dawid_skene" and not self.structured:
            raise InputError(
                "consensus = 'dawid_skene' is single-label: a multi-label project takes the "
                "majority per class (consensus = 'majority')"
            )

    @property
    def structured(self) -> bool:
        """Whether a vote is a list of spans or boxes rather than a class."""
        return self.task in STRUCTURED_TASKS

    @property
    def method_used(self) -> str:
        """What decides, as the review card says it: ``identical`` (spans: the majority of
        identical lists), ``IoU >= 0.5`` (boxes: of lists whose boxes pair up), else
        ``method``."""
        if self.task == "boxes":
            return f"IoU >= {self.box_iou:g}"
        return "identical" if self.structured else self.method

    @classmethod
    def of(cls, settings, task: str | None = None) -> ConsensusRule:
        """The rule of a project's settings (``flow.project.ProjectSettings``) for a
        dataset of ``task`` (default: the project's task; a dataset may declare its own,
        ``Project.task_of``)."""
        return cls(
            method=settings.consensus,
            tie=settings.consensus_tie,
            threshold=settings.consensus_threshold,
            classes=tuple(settings.classes),
            multi_label=settings.multi_label,
            task=task or settings.task,
            box_iou=settings.consensus_iou,
        )

    @classmethod
    def for_dataset(cls, project, dataset: str | None) -> ConsensusRule:
        """The rule of ``project`` (``flow.project.Project``) for ``dataset``'s task."""
        return cls.of(project.settings, project.task_of(dataset))


@dataclass
class Decisions:
    """What the events decide: one row per item with a label or a decision (columns
    :data:`ITEM_COLUMNS`, in the order of their state event), each labeler's live label
    (``votes``: item_id, annotator, label, event_id, created_at, comment, drawn) and, with
    Dawid-Skene, each labeler's estimated accuracy (``labelers``). A vote's ``label`` is
    what it counts as (boxes that agree with another list: the lists' mean), ``drawn``
    what the labeler gave."""

    items: pd.DataFrame
    votes: pd.DataFrame
    labelers: pd.DataFrame | None = field(default=None)

    def labels(self) -> pd.Series:
        """item_id -> label of the items that have one (disputed ones left out)."""
        decided = self.items[self.items["label"].notna()]
        return pd.Series(
            decided["label"].astype(str).to_numpy(),
            index=pd.Index(decided["item_id"].to_numpy(), name="item_id"),
            name="label",
        )


def review_column(con) -> str:
    """``review`` as a select expression: the column, or NULL in a store written before it
    (opened read-only, so not migrated)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_columns() WHERE table_name = 'label_events' "
        "AND column_name = 'review'"
    ).fetchone()[0]
    return "review" if found else "CAST(NULL AS VARCHAR) AS review"


def read_events(con, dataset: str, *, item_ids=None) -> pd.DataFrame:
    """The label events of ``dataset`` (of ``item_ids`` only, when given), oldest first."""
    columns = ", ".join(c if c != "review" else review_column(con) for c in _EVENT_COLUMNS)
    where, args = "dataset = ?", [dataset]
    if item_ids is not None:
        where += " AND item_id IN (SELECT unnest(?::VARCHAR[]))"
        args.append([str(i) for i in item_ids])
    return con.execute(
        f"SELECT {columns} FROM label_events WHERE {where} ORDER BY event_id", args
    ).df()


def decided_labels(con, dataset: str, rule: ConsensusRule, *, as_of: int | None = None):
    """The :class:`Decisions` of ``dataset``'s events (those up to event ``as_of``)."""
    return decide(read_events(con, dataset), rule, as_of=as_of)


def _kept(events: pd.DataFrame) -> pd.DataFrame:
    """The events left on each item's stack, with their replay status (``replay``)."""
    review = events["review"]
    replay = np.where(
        review == "sent_back", "sent_back", np.where(review.notna(), "reviewed", events["status"])
    )
    events = events.assign(replay=replay)
    special = events["replay"].isin(["undone", "sent_back", "reviewed"])
    replayed = set(events.loc[special, "item_id"])
    if not replayed:
        return events
    plain = ~events["item_id"].isin(replayed)
    kept_ids = []
    fields = ["event_id", "replay", "label", "annotator", "created_at"]
    for _, group in events.loc[~plain, fields].groupby(events.loc[~plain, "item_id"], sort=False):
        kept_ids += [e[0] for e in item_state.stack(group.itertuples(index=False, name=None))]
    return events[plain | events["event_id"].isin(kept_ids)]


def decide(events: pd.DataFrame, rule: ConsensusRule, *, as_of: int | None = None) -> Decisions:
    """What ``events`` (label_events rows, oldest first) decide under ``rule``.

    Pure: ``events`` has the columns event_id, item_id, label, status, annotator,
    created_at, comment and review.
    """
    missing = [c for c in _EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise InputError(f"events lack column(s) {', '.join(missing)}")
    events = events.sort_values("event_id", kind="stable")
    if as_of is not None:
        events = events[events["event_id"] <= as_of]
    kept = _kept(events.reset_index(drop=True))
    top = kept.drop_duplicates("item_id", keep="last").set_index("item_id")["event_id"]
    reviews = kept[kept["replay"] == "reviewed"].drop_duplicates("item_id", keep="last")
    actions = kept[kept["replay"].isin(["labeled", "skipped"]) & kept["review"].isna()]
    latest = actions.drop_duplicates(["item_id", "annotator"], keep="last")
    votes = latest[(latest["status"] == "labeled") & latest["label"].notna()]
    votes = votes[["item_id", "annotator", "label", "event_id", "created_at", "comment"]]
    votes = votes.reset_index(drop=True)
    counts = votes.groupby("item_id", sort=False).size()
    if rule.structured:  # lists compared in a canonical order (items labeled once: as stored)
        twice = (votes["item_id"].map(counts) >= 2).to_numpy()
        if twice.any():
            votes = votes.astype({"label": object})
            votes.loc[twice, "label"] = [
                canonical_annotation(v, rule.task) for v in votes.loc[twice, "label"]
            ]
    votes["drawn"] = votes["label"]
    if rule.task == "boxes":
        twice = (votes["item_id"].map(counts) >= 2).to_numpy()
        if twice.any():
            votes.loc[twice, "label"] = _agreeing_boxes(votes.loc[twice], rule.box_iou)
    several = votes[votes["item_id"].map(counts) >= 2]
    consensus, labelers = _consensus(several, rule)
    return Decisions(_items(votes, counts, consensus, reviews, top), votes, labelers)


def _consensus(votes: pd.DataFrame, rule: ConsensusRule):
    """Per item labeled twice or more: label (None when disputed), confidence, unanimous."""
    from active_labeling.metrics import consensus as c

    columns = ["item_id", "label", "confidence", "unanimous"]
    if votes.empty:
        return pd.DataFrame(columns=columns).set_index("item_id"), None
    labelers = None
    tie = "none" if rule.tie == "review" else "first"
    if rule.structured:  # whole lists: a tie is disputed whatever the tie rule
        found = c.majority_vote(votes, None, tie="none")
    elif rule.multi_label:
        decoded = votes.assign(label=[_decode(v, rule.classes) for v in votes["label"]])
        found = c.majority_per_class(decoded, rule.classes, tie=tie)
        found["label"] = [None if v is None else json.dumps(v) for v in found["label"]]
    elif rule.method == "dawid_skene":
        found, labelers = c.dawid_skene(votes, list(rule.classes) or None)
    else:
        found = c.majority_vote(votes, list(rule.classes) or None, tie=tie)
    found = found.set_index("item_id")
    # Labelers who all agree give their label, however unsure a model fitted on few items is.
    common = votes.drop_duplicates("item_id").set_index("item_id")["label"].reindex(found.index)
    unanimous = found["unanimous"].astype(bool)
    found["label"] = common.where(unanimous, found["label"]).astype(object)
    doubtful = found["confidence"] < rule.threshold - 1e-12
    if rule.method_used == "dawid_skene" and rule.tie == "review":
        # A posterior of one half or less is no better than even: a tie, as in the majority.
        doubtful |= found["confidence"] <= 0.5 + 1e-6
    doubtful &= ~unanimous
    found["label"] = found["label"].where(~doubtful, None)
    return found[columns[1:]], labelers


def _agreeing_boxes(votes: pd.DataFrame, threshold: float) -> list:
    """Each vote's label once lists that agree are one (see the module's docstring). In
    labeling order, a list joins the first group whose every list it pairs up with (so a
    group's lists all agree with each other, and a list between two that disagree does not
    make them one), else starts a group; a group of two or more lists votes with the mean
    of their paired boxes (:func:`_mean_boxes`). Labels in canonical order."""
    labels = votes["label"].tolist()
    out = list(labels)
    positions: dict[str, list[int]] = {}
    for i, item in enumerate(votes["item_id"].tolist()):
        positions.setdefault(item, []).append(i)
    for members in positions.values():
        # (votes, each list's boxes in the order of the group's first list)
        groups: list[tuple[list[int], list[list]]] = []
        for i in members:
            boxes = _decoded_boxes(labels[i])
            if boxes is None:  # not a list of boxes: it agrees only with the same value
                continue
            for group, aligned in groups:
                order = _pairing(aligned[0], boxes, threshold)
                if order is not None and all(
                    _pairing(other, boxes, threshold) is not None for other in aligned[1:]
                ):
                    group.append(i)
                    aligned.append([boxes[j] for j in order])
                    break
            else:
                groups.append(([i], [boxes]))
        for group, aligned in groups:
            if len(group) >= 2:
                merged = canonical_annotation(json.dumps(_mean_boxes(aligned)), "boxes")
                for i in group:
                    out[i] = merged
    return out


def _mean_boxes(aligned: list[list[dict]]) -> list[dict]:
    """The mean of paired boxes, corner by corner, to 0.1 pixel: the corners of boxes inside
    an image average inside it (averaging x and w apart, then rounding each, could end a
    box 0.1 past the edge the labelers drew it against)."""
    mean = []
    for b, first in enumerate(aligned[0]):
        box = {"label": first["label"]}
        for start, size in (("x", "w"), ("y", "h")):
            exact_low = float(np.mean([a[b][start] for a in aligned]))
            exact_high = float(np.mean([a[b][start] + a[b][size] for a in aligned]))
            low, high = round(exact_low, 1), round(exact_high, 1)
            extent = round(high - low, 1)
            if low + extent > high:  # binary floats: 10.1 + 89.9 may exceed 100.0
                extent = round(extent - 0.1, 1)
            if extent <= 0:  # a box under 0.1 pixel: not rounded away
                low, extent = exact_low, exact_high - exact_low
            box[start], box[size] = low, extent
        mean.append({k: box[k] for k in ("x", "y", "w", "h", "label")})
    return mean


def _decoded_boxes(value) -> list | None:
    try:
        boxes = json.loads(value)
        if isinstance(boxes, list) and all(
            isinstance(b, dict)
            and "label" in b
            and all(isinstance(b.get(k), int | float) for k in "xywh")
            for b in boxes
        ):
            return boxes
    except (TypeError, ValueError):
        pass
    return None  # not a list of boxes (a class imported before): it agrees only with itself


def _pairing(first: list, other: list, threshold: float) -> list[int] | None:
    """For each box of ``first``, the index of its box in ``other`` when the two lists pair
    up one to one (same class, IoU >= ``threshold``, the pairing overlapping most); None
    when they do not."""
    if len(first) != len(other):
        return None
    if not first:
        return []
    from scipy.optimize import linear_sum_assignment

    iou = np.array(
        [[_iou(a, b) if a["label"] == b["label"] else 0.0 for b in other] for a in first]
    )
    # The most pairs at the threshold first, then the most overlap among them: the pairing of
    # the highest total IoU may hold a pair under it where another pairing holds none.
    valid = iou >= threshold - 1e-12
    rows, columns = linear_sum_assignment(np.where(valid, 1.0 + iou, 0.0), maximize=True)
    if not valid[rows, columns].all():
        return None
    return [int(c) for _, c in sorted(zip(rows, columns, strict=True))]


def _iou(a: dict, b: dict) -> float:
    """Intersection over union of two boxes (x, y, w, h)."""
    w = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
    inter = max(0.0, w) * max(0.0, h)
    union = a["w"] * a["h"] + b["w"] * b["h"] - inter
    return inter / union if union > 0 else 0.0


def canonical_annotation(value, task: str):
    """A spans or boxes label as one text per annotation, whatever order it was drawn in:
    the list sorted by its fields (:data:`_SORT_FIELDS`), coordinates as numbers of one
    type (a box's 10 and 10.0 are one coordinate). A value that is not such a list (a class
    imported before the task changed) is left as it is: it votes as itself.

    >>> drawn = [{"x": 5, "y": 1, "w": 2, "h": 2, "label": "b"}, {"x": 1, "y": 1, "w": 2.0,
    ...          "h": 2, "label": "a"}]
    >>> [(b["x"], b["label"]) for b in json.loads(canonical_annotation(json.dumps(drawn),
    ...                                                                 "boxes"))]
    [(1.0, 'a'), (5.0, 'b')]
    >>> canonical_annotation("PER", "spans")  # not a list: votes as itself
    'PER'
    """
    fields = _SORT_FIELDS[task]
    try:
        decoded = json.loads(value)
        if not isinstance(decoded, list):
            return value
        number = int if task == "spans" else float
        rows = [{f: (str(a[f]) if f == "label" else number(a[f])) for f in fields} for a in decoded]
    except (TypeError, ValueError, KeyError):
        return value
    rows.sort(key=lambda a: tuple(a[f] for f in fields))
    return json.dumps(rows)


def _decode(value: str, classes) -> list[str]:
    try:
        decoded = json.loads(value)
    except ValueError:
        decoded = None
    if not isinstance(decoded, list):  # e.g. a label given before the project was multi-label
        decoded = [value]
    return [v for v in decoded if v in classes] if classes else decoded


def _raw_labels(votes: pd.DataFrame, counts: pd.Series) -> pd.Series:
    """item_id -> each labeler's label as a JSON object. Most items have one label, from
    one of few (labeler, label) pairs: their text is made once per pair."""
    one = (votes["item_id"].map(counts) == 1).to_numpy()
    # Plain object arrays: iterating Arrow-backed strings costs a call per value.
    item, annotator, label = (
        votes[c].to_numpy(dtype=object) for c in ("item_id", "annotator", "drawn")
    )
    pair = pd.MultiIndex.from_arrays([annotator[one], label[one]])
    distinct = pair.unique()
    texts = np.array([json.dumps({a: b}) for a, b in distinct], dtype=object)
    raw = pd.Series(texts[distinct.get_indexer(pair)], index=item[one], dtype=object)
    several: dict[str, dict[str, str]] = {}
    for i, a, b in zip(item[~one], annotator[~one], label[~one], strict=True):
        several.setdefault(i, {})[a] = b
    more = pd.Series(
        [json.dumps(v, sort_keys=True) for v in several.values()],
        index=list(several),
        dtype=object,
    )
    return pd.concat([raw, more]) if len(more) else raw


def _items(votes, counts, consensus, reviews, top) -> pd.DataFrame:
    """One row per item with a vote or a decision (see :data:`ITEM_COLUMNS`)."""
    ids = pd.Index(pd.unique(pd.concat([votes["item_id"], reviews["item_id"]])), name="item_id")
    frame = pd.DataFrame(index=ids)
    frame["n_labels"] = counts.reindex(ids).fillna(0).astype(int)
    frame["raw_labels"] = _raw_labels(votes, counts).reindex(ids)
    frame["consensus_label"] = consensus["label"].reindex(ids).astype(object)
    frame["consensus_confidence"] = consensus["confidence"].reindex(ids).astype(float)
    unanimous = consensus["unanimous"].reindex(ids).astype(object)
    frame["unanimous"] = unanimous.where(frame["n_labels"] != 1, True)
    # Who gave the label: the latest labeler who gave the consensus label, else the latest
    # labeler (one label, or disputed).
    last_vote = votes.drop_duplicates("item_id", keep="last").set_index("item_id").reindex(ids)
    wanted = frame["consensus_label"].where(frame["n_labels"] >= 2, None).dropna()
    agreeing = votes.merge(
        pd.DataFrame({"item_id": wanted.index, "label": wanted.to_numpy()}), on=["item_id", "label"]
    )
    giver = agreeing.drop_duplicates("item_id", keep="last").set_index("item_id")
    giver = giver.reindex(ids).combine_first(last_vote)
    single = frame["n_labels"] == 1
    frame["label"] = last_vote["label"].where(single, frame["consensus_label"]).astype(object)
    frame["label_source"] = np.where(
        single, "labeler", np.where(frame["label"].notna(), "consensus", "disputed")
    )
    frame["annotator"] = giver["annotator"]
    frame["labeled_at"] = giver["created_at"]
    frame["comment"] = giver["comment"]
    decided = reviews.set_index("item_id").reindex(ids)
    frame["review"] = decided["review"]
    frame["reviewer"] = decided["annotator"]
    frame["reviewed_at"] = decided["created_at"]
    reviewed = frame["review"].notna()
    frame["label"] = decided["label"].where(reviewed, frame["label"])
    frame["label_source"] = frame["label_source"].where(~reviewed, "review")
    for column, source in (("annotator", "annotator"), ("labeled_at", "created_at")):
        frame[column] = decided[source].where(reviewed, frame[column])
    frame["comment"] = decided["comment"].where(reviewed, frame["comment"])
    frame["state_event_id"] = top.reindex(ids).astype("int64")
    for column in ("label", "consensus_label"):  # None, not NaN, for "no label"
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None)
    frame = frame.sort_values("state_event_id", kind="stable").reset_index()
    return frame.loc[:, list(ITEM_COLUMNS)]
