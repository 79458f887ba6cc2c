"""Simulated labelers: a team with their own error rates, overlap, consensus, error detection.

Instead of one oracle (``label_noise``), a ``[labelers]`` table in the experiment file
names a team: each labeler right with their ``accuracy``, else a wrong class drawn at
random, or, for an ``adversarial`` one, always the same wrong class (the next one). Every
pool row is labeled by one labeler drawn at random; a share ``overlap`` of the rows by
``per_overlap`` distinct labelers. The label the loop learns from is the rows' consensus
(``consensus``: the majority, ties to the first class, as ``consensus_tie = "first"``
does in a project; or Dawid-Skene). Everything is drawn once per seed for every pool row,
so a row's label does not depend on when a strategy asks for it, and every strategy of a
seed sees the same team; Dawid-Skene is fitted on every overlap row of the pool at once,
the most it could know, a bound on what a project with fewer overlap rows gets.

The measures (logged with ``[labelers]``; see ``docs/experiment.md``): the consensus
accuracy on the labeled overlap rows, and likely label errors found by confident learning
on out-of-fold probabilities of the run's model on the labeled rows (precision, recall
against the wrong labels), with the test accuracy after a reviewer corrected every suspect.
This module reads no file; it is pure given its random generator.

Examples
--------
>>> import numpy as np
>>> spec = LabelersSpec(team=[{"name": "a", "accuracy": 1.0}, {"name": "b", "accuracy": 1.0}],
...                     overlap=0.5)
>>> team = simulate_team(spec, np.array([0, 1, 2, 0, 1, 2]), np.random.default_rng(0))
>>> team.revealed.tolist(), int((team.votes >= 0).sum(axis=1).max())
([0, 1, 2, 0, 1, 2], 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:  # the experiment config imports this module: numpy waits for a run
    import numpy as np


class LabelerSpec(BaseModel):
    """One simulated labeler."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    accuracy: float = Field(ge=0, le=1)
    #: Wrong on purpose: always the same wrong class (the next one), never a random one.
    adversarial: bool = False


class LabelersSpec(BaseModel):
    """The ``[labelers]`` table of an experiment file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team: list[LabelerSpec] = Field(min_length=1)
    overlap: float = Field(default=0.1, ge=0, le=1)
    per_overlap: int = Field(default=2, ge=2)
    consensus: Literal["majority", "dawid_skene"] = "majority"
    #: Folds of the out-of-fold probabilities the error detection measures use.
    cv_folds: int = Field(default=3, ge=2, le=10)

    @model_validator(mode="after")
    def _fits(self) -> LabelersSpec:
        names = [labeler.name for labeler in self.team]
        if len(set(names)) != len(names):
            raise ValueError("two labelers of the team have the same name")
        if self.overlap > 0 and self.per_overlap > len(self.team):
            raise ValueError(
                f"per_overlap = {self.per_overlap} labelers per overlap row, but the team has "
                f"{len(self.team)}"
            )
        return self


@dataclass
class TeamLabels:
    """What the team gave, for every row of the data (-1: that labeler did not label it)."""

    votes: np.ndarray  # (n rows, n labelers) of class codes, -1 for none
    revealed: np.ndarray  # the consensus of each row's votes
    names: list[str]
    cv_folds: int = 3  # of the error detection measures

    @property
    def overlap_rows(self) -> np.ndarray:
        """Rows labeled by two labelers or more."""
        return (self.votes >= 0).sum(axis=1) >= 2


def simulate_team(spec: LabelersSpec, codes: np.ndarray, rng: np.random.Generator) -> TeamLabels:
    """Every row's labels from the team and their consensus (see the module docstring)."""
    import numpy as np

    n, m = codes.shape[0], len(spec.team)
    k = max(int(codes.max()) + 1, 2) if n else 2
    shared = rng.random(n) < spec.overlap
    order = np.argsort(rng.random((n, m)), axis=1)  # each row's labelers, in a random order
    how_many = np.where(shared, spec.per_overlap, 1)
    chosen = np.arange(m)[None, :] < how_many[:, None]
    position = np.argsort(order, axis=1)  # where each labeler comes in a row's order
    votes = np.full((n, m), -1, dtype=np.int64)
    right = rng.random((n, m))
    wrong = (codes[:, None] + rng.integers(1, k, size=(n, m))) % k
    for j, labeler in enumerate(spec.team):
        asked = chosen[np.arange(n), position[:, j]]
        miss = right[:, j] >= labeler.accuracy
        given = np.where(miss, (codes + 1) % k if labeler.adversarial else wrong[:, j], codes)
        votes[asked, j] = given[asked]
    revealed = _consensus(votes, spec.consensus, k)
    return TeamLabels(votes, revealed, [t.name for t in spec.team], spec.cv_folds)


def _consensus(votes: np.ndarray, method: str, k: int) -> np.ndarray:
    """Each row's consensus: its one label, or the majority (ties to the lowest class) or
    Dawid-Skene over every row labeled twice or more."""
    import numpy as np
    import pandas as pd

    from active_labeling.metrics.consensus import dawid_skene, majority_vote

    given = votes >= 0
    single = given.sum(axis=1) == 1
    revealed = np.where(single, votes.max(axis=1), -1)
    several = np.flatnonzero(given.sum(axis=1) >= 2)
    if several.size == 0:
        return revealed
    rows, labelers = np.nonzero(given[several])
    frame = pd.DataFrame(
        {
            "item_id": several[rows],
            "annotator": labelers,
            "label": votes[several[rows], labelers],
        }
    )
    if method == "dawid_skene":
        found, _ = dawid_skene(frame, list(range(k)))
    else:
        found = majority_vote(frame, list(range(k)), tie="first")
    revealed[found["item_id"].to_numpy()] = found["label"].to_numpy(dtype=np.int64)
    return revealed


# -- measures (experiment.measures logs them, group "labelers") ---------------------------------


def _consensus_accuracy(step) -> float:
    overlap = step.team.overlap_rows[step.labeled]
    if not overlap.any():
        return math.nan
    rows = step.labeled[overlap]
    return float((step.y_revealed[rows] == step.y_true[rows]).mean())


def _suspects(step):
    """Confident learning on the labeled rows (cached per step): (suspect mask, the rows'
    wrong-label mask), or None when the labels cannot be scored out of fold."""
    if "suspects" in step._cache:
        return step._cache["suspects"]
    import numpy as np
    from sklearn.base import clone

    from active_labeling.errors import InputError
    from active_labeling.metrics.label_errors import label_issues, out_of_fold_proba

    rows = step.labeled
    y = step.y_revealed[rows]
    try:
        proba = out_of_fold_proba(
            clone(step.model), step.X[rows], y, cv=step.team.cv_folds, random_state=step.iteration
        )
    except InputError:  # a class with a single label, or a single class
        step._cache["suspects"] = None
        return None
    found = label_issues(y, proba, classes=np.unique(y).tolist())
    result = (found["issue"].to_numpy(), y != step.y_true[rows])
    step._cache["suspects"] = result
    return result


def _suspect_precision(step) -> float:
    scored = _suspects(step)
    if scored is None or not scored[0].any():
        return math.nan
    return float(scored[1][scored[0]].mean())


def _suspect_recall(step) -> float:
    scored = _suspects(step)
    if scored is None or not scored[1].any():
        return math.nan
    return float(scored[0][scored[1]].mean())


def _accuracy_after_review(step) -> float:
    """Test accuracy of the model refitted once a reviewer corrected every suspect (to the
    true class): what reviewing the likely label errors buys."""
    import numpy as np
    from sklearn.base import clone

    scored = _suspects(step)
    if scored is None:
        return math.nan
    rows = step.labeled
    labels = np.where(scored[0], step.y_true[rows], step.y_revealed[rows])
    model = clone(step.model).fit(step.X[rows], labels)
    return float((model.predict(step.X[step.test]) == step.y_true[step.test]).mean())


#: name -> (compute(step), description), in log order.
MEASURES = {
    "consensus_accuracy": (
        _consensus_accuracy,
        "share of the labeled overlap rows whose consensus label is right",
    ),
    "suspect_precision": (
        _suspect_precision,
        "share of the likely label errors (confident learning, out of fold) that are wrong",
    ),
    "suspect_recall": (
        _suspect_recall,
        "share of the wrong labels among the labeled rows that are likely label errors",
    ),
    "accuracy_after_review": (
        _accuracy_after_review,
        "test accuracy once a reviewer corrected every likely label error",
    ),
}
