"""What is measured at each iteration of a simulated run, by name.

Iteration ``i`` is the state after ``i`` batches: the model ``h_i`` fitted on the labeled
rows ``L_i``, and the batch ``B_i`` that took ``L_{i-1}`` to ``L_i`` (none at iteration 0),
chosen by ``h_{i-1}``. Every measure is a function of that state alone, so the runner
logs it and ``replay`` recomputes it from the cached selections, with the same code and
the same result. The monitoring measures call ``active_labeling.metrics``; the batch ones
are NaN at iteration 0, which has no batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from active_labeling import metrics


@dataclass
class Step:
    """The state of one run at one iteration (positions index the experiment's rows)."""

    iteration: int
    X: np.ndarray
    y_true: np.ndarray
    y_revealed: np.ndarray
    test: np.ndarray
    monitor: np.ndarray
    labeled: np.ndarray
    model: object
    batch: np.ndarray | None = None
    previous_labeled: np.ndarray | None = None
    previous_model: object | None = None
    noisy: np.ndarray | None = None
    holdout: np.ndarray | None = None
    team: object | None = None  # experiment.labelers.TeamLabels, with [labelers]
    _cache: dict = field(default_factory=dict, repr=False)

    def predict(self, which: str, rows: str) -> np.ndarray:
        """Predictions of ``model`` or ``previous_model`` on ``test``, ``monitor`` or ``batch``."""
        key = ("predict", which, rows)
        if key not in self._cache:
            self._cache[key] = getattr(self, which).predict(self.X[getattr(self, rows)])
        return self._cache[key]

    def proba(self, which: str, rows: str) -> np.ndarray:
        key = ("proba", which, rows)
        if key not in self._cache:
            self._cache[key] = getattr(self, which).predict_proba(self.X[getattr(self, rows)])
        return self._cache[key]

    @property
    def multilabel(self) -> bool:
        """Whether the labels are label sets (an indicator matrix)."""
        return self.y_true.ndim == 2

    @property
    def has_batch(self) -> bool:
        return self.batch is not None and self.batch.size > 0

    def unlabeled_monitor(self, before_batch: bool = False) -> np.ndarray:
        """Which rows of the fixed sample are unlabeled: now, or before the batch."""
        labeled = self.previous_labeled if before_batch else self.labeled
        return ~np.isin(self.monitor, labeled)


@dataclass(frozen=True)
class Measure:
    """A named per-iteration value and what it means."""

    name: str
    compute: Callable[[Step], float]
    description: str
    group: str  # "core", "noise", "monitoring", "labelers"...


def _labeler_measures() -> dict:
    from active_labeling.experiment.labelers import MEASURES as defined

    return defined


def _holdout(step: Step, which: str) -> float:
    return metrics.holdout_scores(step.y_true[step.test], step.predict("model", "test"))[which]


def _batch_only(compute: Callable[[Step], float]) -> Callable[[Step], float]:
    def measure(step: Step) -> float:
        return float(compute(step)) if step.has_batch else math.nan

    return measure


def _sample_uncertainty(step: Step) -> tuple[float, float]:
    """Mean and max least confidence of the model on the still unlabeled sample rows."""
    key = "sample_uncertainty"
    if key not in step._cache:
        proba = step.proba("model", "monitor")[step.unlabeled_monitor()]
        step._cache[key] = (
            metrics.sample_uncertainty(proba) if proba.shape[0] else (math.nan, math.nan)
        )
    return step._cache[key]


def _random_batch_baseline(step: Step, which: str) -> float:
    """What a uniformly drawn batch would have measured, in expectation: the sample rows
    that were unlabeled before the batch stand for it (``which``: exploration or agreement).
    """
    rows = step.monitor[step.unlabeled_monitor(before_batch=True)]
    if rows.shape[0] == 0:
        return math.nan
    if which == "exploration":
        return metrics.exploration_distance(step.X[rows], step.X[step.previous_labeled])
    return metrics.batch_agreement(
        step.previous_model.predict(step.X[rows]),
        step.X[rows],
        step.X[step.previous_labeled],
        step.y_revealed[step.previous_labeled],
    )


def _batch_uncertainty(step: Step) -> np.ndarray:
    # Least confidence of the model that chose the batch, on the batch.
    return 1.0 - step.proba("previous_model", "batch").max(axis=1)


MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure(
            "n_labeled",
            lambda s: s.labeled.shape[0],
            "rows labeled at this iteration",
            "core",
        ),
        Measure(
            "accuracy",
            lambda s: _holdout(s, "accuracy"),
            "test accuracy of the model fitted on the labeled rows (true test labels)",
            "core",
        ),
        Measure(
            "macro_f1",
            lambda s: _holdout(s, "macro_f1"),
            "test macro-averaged F1",
            "core",
        ),
        Measure(
            "balanced_accuracy",
            lambda s: balanced_accuracy_score(s.y_true[s.test], s.predict("model", "test")),
            "test balanced accuracy (mean recall per class); not logged, for replay",
            "extra",
        ),
        Measure(
            "holdout_accuracy",
            lambda s: metrics.holdout_scores(
                s.y_revealed[s.holdout], s.model.predict(s.X[s.holdout])
            )["accuracy"],
            "accuracy on a small random holdout (monitoring.holdout_size test rows), as a "
            "team that sets labels aside would measure it",
            "holdout",
        ),
        Measure(
            "noisy_ratio",
            lambda s: float(s.noisy[s.labeled].mean()),
            "share of the labeled rows the data source marks noisy (NSR at the last iteration)",
            "noise",
        ),
        Measure(
            "mislabeled_ratio",
            lambda s: float((s.y_revealed[s.labeled] != s.y_true[s.labeled]).mean()),
            "share of the labeled rows whose label the noisy oracle got wrong",
            "label_noise",
        ),
        Measure(
            "contradiction_ratio",
            _batch_only(
                lambda s: metrics.contradiction_ratio(
                    s.predict("previous_model", "monitor"), s.predict("model", "monitor")
                )
            ),
            "share of a fixed pool sample whose predicted class changed since the last model",
            "monitoring",
        ),
        Measure(
            "mean_confidence",
            lambda s: metrics.mean_confidence(s.proba("model", "monitor")),
            "mean max probability of the model on the fixed pool sample (Vlachos 2008)",
            "monitoring",
        ),
        Measure(
            "stop_set_kappa",
            _batch_only(
                lambda s: metrics.stop_set_kappa(
                    s.predict("previous_model", "monitor"), s.predict("model", "monitor")
                )
            ),
            "Cohen's kappa between the last two models' predictions on the fixed sample "
            "(Bloodgood and Vijay-Shanker 2009's stop set)",
            "monitoring",
        ),
        Measure(
            "overall_uncertainty",
            lambda s: _sample_uncertainty(s)[0],
            "mean least confidence of the model on the unlabeled rows of the fixed sample "
            "(Zhu et al. 2008)",
            "monitoring",
        ),
        Measure(
            "max_uncertainty",
            lambda s: _sample_uncertainty(s)[1],
            "largest least confidence of the model on the unlabeled rows of the fixed "
            "sample (Zhu et al. 2008's max-confidence)",
            "monitoring",
        ),
        Measure(
            "exploration_distance",
            _batch_only(
                lambda s: metrics.exploration_distance(s.X[s.batch], s.X[s.previous_labeled])
            ),
            "mean distance from the batch to the nearest row labeled before it",
            "monitoring",
        ),
        Measure(
            "exploration_gain",
            _batch_only(
                lambda s: metrics.exploration_gain(
                    s.X[s.monitor], s.X[s.previous_labeled], s.X[s.batch]
                )
            ),
            "mean reduction of the fixed sample's distance to the labeled set by the batch",
            "monitoring",
        ),
        Measure(
            "random_exploration_distance",
            _batch_only(lambda s: _random_batch_baseline(s, "exploration")),
            "exploration_distance a uniformly drawn batch would have, in expectation",
            "monitoring",
        ),
        Measure(
            "batch_agreement",
            _batch_only(
                lambda s: metrics.batch_agreement(
                    s.predict("previous_model", "batch"),
                    s.X[s.batch],
                    s.X[s.previous_labeled],
                    s.y_revealed[s.previous_labeled],
                )
            ),
            "Cohen's kappa, on the batch, between the model that chose it and a 1-NN rule "
            "on the rows labeled before",
            "monitoring",
        ),
        Measure(
            "random_batch_agreement",
            _batch_only(lambda s: _random_batch_baseline(s, "agreement")),
            "batch_agreement a uniformly drawn batch would have, in expectation",
            "monitoring",
        ),
        Measure(
            "batch_easiness",
            _batch_only(
                lambda s: metrics.batch_easiness(
                    s.predict("previous_model", "batch"), s.y_revealed[s.batch]
                )
            ),
            "accuracy of the model that chose the batch on the batch's labels",
            "monitoring",
        ),
        Measure(
            "batch_uncertainty",
            _batch_only(lambda s: _batch_uncertainty(s).mean()),
            "mean least confidence of the model that chose the batch, on the batch",
            "monitoring",
        ),
        Measure(
            "uncertainty_variance",
            _batch_only(lambda s: metrics.uncertainty_variance([_batch_uncertainty(s)])),
            "variance of that uncertainty over the batch (Ghayoomi 2010)",
            "monitoring",
        ),
    ]
}
"""Every measure the harness knows, by name."""
# The simulated labelers' measures (experiment.labelers), group "labelers".
MEASURES.update(
    {
        name: Measure(name, compute, description, "labelers")
        for name, (compute, description) in _labeler_measures().items()
    }
)


# -- multi-label data: label sets, scored as sets (``metrics.label_sets``) ------------------------


def _set_scores(step: Step, name: str) -> float:
    """One of ``models.multilabel.multilabel_scores`` on the test rows."""
    key = "set_scores"
    if key not in step._cache:
        from active_labeling.models.multilabel import multilabel_scores

        step._cache[key] = multilabel_scores(step.y_true[step.test], step.predict("model", "test"))
    return step._cache[key][name]


def _set_sample_uncertainty(step: Step) -> tuple[float, float]:
    key = "set_sample_uncertainty"
    if key not in step._cache:
        proba = step.proba("model", "monitor")[step.unlabeled_monitor()]
        step._cache[key] = (
            metrics.binary_sample_uncertainty(proba) if proba.shape[0] else (math.nan, math.nan)
        )
    return step._cache[key]


def _set_random_batch_baseline(step: Step, which: str) -> float:
    rows = step.monitor[step.unlabeled_monitor(before_batch=True)]
    if rows.shape[0] == 0:
        return math.nan
    if which == "exploration":
        return metrics.exploration_distance(step.X[rows], step.X[step.previous_labeled])
    return metrics.set_batch_agreement(
        step.previous_model.predict(step.X[rows]),
        step.X[rows],
        step.X[step.previous_labeled],
        step.y_revealed[step.previous_labeled],
    )


def _set_batch_uncertainty(step: Step) -> np.ndarray:
    # Each batch row's mean binary least confidence under the model that chose it.
    proba = step.proba("previous_model", "batch")
    return np.minimum(proba, 1.0 - proba).mean(axis=1)


def _multilabel_measures() -> dict[str, Measure]:
    """The measures of multi-label data. The monitoring ones keep the names the stopping
    advice reads, with the set variants (``docs/monitoring.md``)."""
    core = [
        Measure(
            "n_labeled", MEASURES["n_labeled"].compute, "rows labeled at this iteration", "core"
        ),
        Measure(
            "micro_f1",
            lambda s: _set_scores(s, "f1_micro"),
            "test micro-averaged F1 over every (row, class) decision (true test label sets)",
            "core",
        ),
        Measure(
            "macro_f1",
            lambda s: _set_scores(s, "f1_macro"),
            "test macro-averaged F1: the mean of the classes' F1",
            "core",
        ),
        Measure(
            "hamming_loss",
            lambda s: _set_scores(s, "hamming_loss"),
            "share of the test (row, class) decisions that are wrong",
            "core",
        ),
        Measure(
            "subset_accuracy",
            lambda s: _set_scores(s, "subset_accuracy"),
            "share of the test rows whose whole label set is right",
            "core",
        ),
        Measure(
            "holdout_accuracy",
            lambda s: float(
                (s.model.predict(s.X[s.holdout]) == s.y_revealed[s.holdout]).all(axis=1).mean()
            ),
            "subset accuracy on a small random holdout (monitoring.holdout_size test rows)",
            "holdout",
        ),
        Measure(
            "mislabeled_ratio",
            lambda s: float((s.y_revealed[s.labeled] != s.y_true[s.labeled]).any(axis=1).mean()),
            "share of the labeled rows whose label set the noisy oracle got wrong",
            "label_noise",
        ),
        Measure(
            "contradiction_ratio",
            _batch_only(
                lambda s: metrics.set_contradiction_ratio(
                    s.predict("previous_model", "monitor"), s.predict("model", "monitor")
                )
            ),
            "share of a fixed pool sample whose predicted label set changed since the last model",
            "monitoring",
        ),
        Measure(
            "mean_confidence",
            lambda s: metrics.binary_mean_confidence(s.proba("model", "monitor")),
            "mean over the fixed sample and the classes of the probability of each decision",
            "monitoring",
        ),
        Measure(
            "stop_set_kappa",
            _batch_only(
                lambda s: metrics.set_agreement(
                    s.predict("previous_model", "monitor"), s.predict("model", "monitor")
                )
            ),
            "mean Jaccard index between the last two models' predicted sets on the fixed sample",
            "monitoring",
        ),
        Measure(
            "overall_uncertainty",
            lambda s: _set_sample_uncertainty(s)[0],
            "mean over the unlabeled sample rows of their mean binary least confidence",
            "monitoring",
        ),
        Measure(
            "max_uncertainty",
            lambda s: _set_sample_uncertainty(s)[1],
            "largest mean binary least confidence of an unlabeled sample row",
            "monitoring",
        ),
        MEASURES["exploration_distance"],
        MEASURES["exploration_gain"],
        Measure(
            "random_exploration_distance",
            _batch_only(lambda s: _set_random_batch_baseline(s, "exploration")),
            "exploration_distance a uniformly drawn batch would have, in expectation",
            "monitoring",
        ),
        Measure(
            "batch_agreement",
            _batch_only(
                lambda s: metrics.set_batch_agreement(
                    s.predict("previous_model", "batch"),
                    s.X[s.batch],
                    s.X[s.previous_labeled],
                    s.y_revealed[s.previous_labeled],
                )
            ),
            "mean Jaccard index, on the batch, between the sets of the model that chose it and "
            "of a 1-NN rule on the rows labeled before",
            "monitoring",
        ),
        Measure(
            "random_batch_agreement",
            _batch_only(lambda s: _set_random_batch_baseline(s, "agreement")),
            "batch_agreement a uniformly drawn batch would have, in expectation",
            "monitoring",
        ),
        Measure(
            "batch_easiness",
            _batch_only(
                lambda s: metrics.set_batch_easiness(
                    s.predict("previous_model", "batch"), s.y_revealed[s.batch]
                )
            ),
            "mean Jaccard index between the sets the model that chose the batch predicted and "
            "the batch's label sets",
            "monitoring",
        ),
        Measure(
            "batch_uncertainty",
            _batch_only(lambda s: _set_batch_uncertainty(s).mean()),
            "mean binary least confidence of the model that chose the batch, on the batch",
            "monitoring",
        ),
        Measure(
            "uncertainty_variance",
            _batch_only(lambda s: metrics.uncertainty_variance([_set_batch_uncertainty(s)])),
            "variance of that uncertainty over the batch (Ghayoomi 2010)",
            "monitoring",
        ),
    ]
    return {m.name: m for m in core}


MULTI_LABEL_MEASURES: dict[str, Measure] = _multilabel_measures()
"""Every measure of multi-label data, by name."""


def measures_for(multilabel: bool) -> dict[str, Measure]:
    """The measures of single-label or multi-label data."""
    return MULTI_LABEL_MEASURES if multilabel else MEASURES


def quality_measure(measures) -> str:
    """The measure the learning curves and the AUCs follow: test accuracy, or for
    multi-label experiments (which log ``micro_f1``) the micro-averaged F1.

    Examples
    --------
    >>> quality_measure(["n_labeled", "micro_f1", "macro_f1"]), quality_measure(["accuracy"])
    ('micro_f1', 'accuracy')
    """
    return "micro_f1" if "micro_f1" in measures else "accuracy"


def logged_measures(
    *,
    noisy: bool,
    label_noise: bool,
    monitoring: bool,
    holdout: bool = False,
    multilabel: bool = False,
    labelers: bool = False,
) -> list[str]:
    """The measures an experiment logs at every iteration, in column order.

    Examples
    --------
    >>> logged_measures(noisy=True, label_noise=False, monitoring=False)
    ['n_labeled', 'accuracy', 'macro_f1', 'noisy_ratio']
    >>> logged_measures(noisy=False, label_noise=False, monitoring=False, multilabel=True)
    ['n_labeled', 'micro_f1', 'macro_f1', 'hamming_loss', 'subset_accuracy']
    """
    groups = {"core"}
    if holdout:
        groups.add("holdout")
    if noisy:
        groups.add("noise")
    if label_noise:
        groups.add("label_noise")
    if monitoring:
        groups.add("monitoring")
    if labelers:
        groups.add("labelers")
    return [name for name, m in measures_for(multilabel).items() if m.group in groups]


def measure(step: Step, names: list[str]) -> dict[str, float]:
    """The values of ``names`` at ``step``, with ``iteration`` first."""
    known = measures_for(step.multilabel)
    row: dict[str, float] = {"iteration": step.iteration}
    for name in names:
        value = known[name].compute(step)
        row[name] = value if isinstance(value, int) else float(value)
    return row
