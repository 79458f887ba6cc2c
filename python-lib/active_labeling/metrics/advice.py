"""Stopping rules as objects, and the advice that combines their votes.

A rule reads the history of one monitoring metric (one value per model version, oldest
first) and votes: stop, go on, or nothing yet (its history is too short). A policy names
the rules whose votes decide "stop" (``stop_rules``: a ``quorum`` share of those whose
metric is measured must say stop) and the rules that only ever raise a "check"
(``watch_rules``). :func:`advise` applies a policy to a history; the monitoring recipe calls
it after every model version, and the experiment harness replays it over simulated runs
(``experiment.advice``) to measure how often it stops too early and how much it saves.

Every rule says where it comes from; ``docs/metrics.md`` and ``docs/monitoring.md`` say what
the advice achieved on the strategy study's data sets. This module never stops anything: it
advises.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_history, check_non_negative, check_positive_int
from active_labeling.metrics.cost import MIN_POINTS, cost_projection
from active_labeling.metrics.stopping import (
    _fell_each_time,
    classification_change_stop,
    stabilizing_predictions_stop,
    uncertainty_stop,
)

#: Metric names the rules read (the ``metric`` column of the monitoring dataset).
CONTRADICTION_RATIO = "contradiction_ratio"
STOP_SET_KAPPA = "stop_set_kappa"
OVERALL_UNCERTAINTY = "overall_uncertainty"
MAX_UNCERTAINTY = "max_uncertainty"
UNCERTAINTY_VARIANCE = "uncertainty_variance"
MEAN_CONFIDENCE = "mean_confidence"
HOLDOUT_ACCURACY = "holdout_accuracy"
ADVICE_METRICS = (
    CONTRADICTION_RATIO,
    STOP_SET_KAPPA,
    OVERALL_UNCERTAINTY,
    MAX_UNCERTAINTY,
    UNCERTAINTY_VARIANCE,
    MEAN_CONFIDENCE,
    HOLDOUT_ACCURACY,
)
#: The advice study's results, shipped with the package (``bench/advice_calibration.py``).
CALIBRATION_FILE = "advice_calibration.json"
#: Every signal a history keeps: the advice metrics and those the strategy advice reads.
SIGNALS = (
    *ADVICE_METRICS,
    "exploration_distance",
    "random_exploration_distance",
    "batch_agreement",
    "random_batch_agreement",
)


# -- the history ----------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """The advice metrics of one model, aligned by version, oldest first.

    ``values[name][i]`` is the metric of version ``i`` (NaN where it was not measured);
    a metric never measured at all is not a key, so a rule reading it does not vote (a
    project without a holdout has no holdout accuracy).
    """

    n_labels: np.ndarray
    values: dict[str, np.ndarray]

    def __len__(self) -> int:
        return int(self.n_labels.shape[0])

    def upto(self, version: int) -> History:
        """The history of versions ``0 .. version`` (what was known then)."""
        end = version + 1
        return History(self.n_labels[:end], {k: v[:end] for k, v in self.values.items()})

    def without(self, *names: str) -> History:
        return History(self.n_labels, {k: v for k, v in self.values.items() if k not in names})

    def series(self, name: str) -> np.ndarray | None:
        """The measured values of ``name`` (NaN dropped), or None if it never was."""
        values = self.values.get(name)
        return None if values is None else values[~np.isnan(values)]

    def pairs(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(n_labels, values) of the versions where both are known."""
        values = self.values[name]
        keep = ~np.isnan(values) & ~np.isnan(self.n_labels)
        return self.n_labels[keep], values[keep]

    @classmethod
    def from_frame(cls, metric_history) -> History:
        return _history_from_frame(metric_history)


def _version_order(metric_history: pd.DataFrame) -> pd.Series | None:
    """The ``model_version`` column as numbers to sort on, or None without that column.

    Versions are whole numbers in a project; any other labels sort as given (first seen
    first), never as strings ('10' before '9')."""
    if "model_version" not in metric_history.columns:
        return None
    versions = metric_history["model_version"]
    numeric = pd.to_numeric(versions, errors="coerce")
    if numeric.notna().all():
        return numeric
    return pd.Series(pd.factorize(versions)[0], index=versions.index)


def _history_from_frame(metric_history) -> History:
    """One row per model version from a long or a wide table (see :func:`stopping_advice`)."""
    if not isinstance(metric_history, pd.DataFrame):
        raise InputError(f"metric_history must be a DataFrame, got {type(metric_history).__name__}")
    if metric_history.empty:
        raise InputError("metric_history is empty: no model version was measured yet")
    for column in ("dataset", "model_name"):
        if column in metric_history.columns and metric_history[column].nunique() > 1:
            names = ", ".join(map(repr, sorted(metric_history[column].dropna().unique())[:3]))
            raise InputError(
                f"metric_history mixes several values of {column} ({names}); give the history "
                "of one model on one dataset"
            )
    # One value per model version, in the order the versions were trained (two versions may
    # share a number of labels, relabels, or a later one have fewer, undos); without
    # versions, one per number of labels. A rerun of the same key replaces the earlier row.
    table, version = metric_history, _version_order(metric_history)
    if version is not None:
        table, key = table.assign(_version=version), "_version"
    else:
        key = "n_labels" if "n_labels" in table.columns else None
    order = [c for c in (key, "computed_at") if c is not None and c in table.columns]
    if order:
        table = table.sort_values(order, kind="stable")
    long = {"metric", "value"} <= set(table.columns)
    if long:
        if key is None:
            raise InputError("metric_history in long form needs model_version or n_labels")
        table = table.drop_duplicates(["metric", key], keep="last")
        wide = table.pivot(index=key, columns="metric", values="value")
        if "n_labels" in table.columns:
            n_labels = table.groupby(key)["n_labels"].last().reindex(wide.index)
        else:
            n_labels = pd.Series(np.nan, index=wide.index)
    else:
        if key is not None:
            table = table.drop_duplicates(key, keep="last")
        wide = table.reset_index(drop=True)
        n_labels = wide["n_labels"] if "n_labels" in wide.columns else None
        if n_labels is None:
            n_labels = pd.Series(np.nan, index=wide.index)
    values = {}
    for name in SIGNALS:
        if name not in wide.columns:
            continue
        try:
            column = pd.to_numeric(wide[name]).to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InputError(f"metric_history: {name} must hold numbers: {exc}") from None
        check_history(column, name)  # refuses infinities, names the metric
        values[name] = column
    return History(pd.to_numeric(n_labels).to_numpy(dtype=np.float64), values)


# -- the rules ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vote:
    """One rule's vote: ``stop`` is None while its history is too short to vote."""

    rule: str
    stop: bool | None
    reason: str
    stuck: bool = False


def _percent(values) -> str:
    return ", ".join(f"{100 * v:.1f}%" for v in values)


def _arrow(values) -> str:
    return " → ".join(f"{v:.4g}" for v in values)


def _waiting(rule: str, what: str, have: int, need: int) -> Vote:
    return Vote(rule, None, f"{what}: {have} value(s) so far, the rule needs {need}")


@dataclass(frozen=True)
class StoppingRule:
    """A rule on one metric's history. Subclasses set ``name``, ``metric``, ``source``."""

    name: ClassVar[str] = ""
    metric: ClassVar[str] = ""
    source: ClassVar[str] = ""

    def vote(self, history: History) -> Vote | None:
        """The rule's vote on ``history``, or None when its metric was never measured."""
        values = history.series(self.metric)
        if values is None:
            return None
        return self._vote(values, history)

    def _vote(self, values: np.ndarray, history: History) -> Vote:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.__dict__.items())
        return f"{self.name}({params})"


@dataclass(frozen=True)
class ContradictionsLow(StoppingRule):
    """The tutorial's procedure: contradictions low, stop; flat and high, the strategy may
    be stuck. Stops when each of the last ``k`` contradiction ratios is at most
    ``threshold``; raises "stuck" when all ``k`` are above it and the last is down by less
    than ``stuck_min_drop`` (a share) from the first."""

    k: int = 3
    threshold: float = 0.01
    stuck_min_drop: float = 0.1
    name: ClassVar[str] = "contradictions"
    metric: ClassVar[str] = CONTRADICTION_RATIO
    source: ClassVar[str] = "Abraham 2020 (the tutorial's recommended procedure)"

    def _vote(self, values, history) -> Vote:
        k = self.k
        if values.shape[0] < k:
            return _waiting(self.name, "contradictions", values.shape[0], k)
        last = values[-k:]
        if (last <= self.threshold).all():
            return Vote(
                self.name,
                True,
                f"contradictions stalled near zero: the last {k} model versions changed "
                f"{_percent(last)} of the sample (threshold {_percent([self.threshold])})",
            )
        if (
            k >= 2  # one value says nothing about a trend
            and (last > self.threshold).all()
            and last[-1] > (1.0 - self.stuck_min_drop) * last[0]
        ):
            return Vote(
                self.name,
                False,
                f"contradictions are not decreasing: {_percent(last)} over the last {k} "
                "model versions, far from zero; the query strategy may be stuck, try one "
                "that picks easier rows",
                stuck=True,
            )
        return Vote(
            self.name,
            False,
            f"contradictions still at {_percent(last)} over the last {k} model versions "
            f"(stop below {_percent([self.threshold])})",
        )


@dataclass(frozen=True)
class ClassificationChange(StoppingRule):
    """Zhu et al. 2008: stop when no predicted class of the sample changed, ``rounds``
    versions in a row."""

    rounds: int = 1
    name: ClassVar[str] = "classification_change"
    metric: ClassVar[str] = CONTRADICTION_RATIO
    source: ClassVar[str] = "Zhu, Wang, Yao and Tsou 2008"

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.rounds:
            return _waiting(self.name, "classification change", values.shape[0], self.rounds)
        last = values[-self.rounds :]
        stop = classification_change_stop(values, self.rounds)
        state = "no predicted class changed" if stop else "predictions still change"
        return Vote(
            self.name,
            stop,
            f"classification change: {state} over the last {self.rounds} model version(s) "
            f"({_percent(last)} of the sample) (Zhu et al. 2008)",
        )


@dataclass(frozen=True)
class StabilizingPredictions(StoppingRule):
    """Bloodgood and Vijay-Shanker 2009: the mean kappa between successive versions on the
    stop set, over the last ``window`` versions, is at least ``threshold``."""

    window: int = 3
    threshold: float = 0.99
    name: ClassVar[str] = "stabilizing_predictions"
    metric: ClassVar[str] = STOP_SET_KAPPA
    source: ClassVar[str] = "Bloodgood and Vijay-Shanker 2009"

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.window:
            return _waiting(self.name, "stabilizing predictions", values.shape[0], self.window)
        last = values[-self.window :]
        stop = stabilizing_predictions_stop(values, self.window, self.threshold)
        state = "have stabilized" if stop else "still move"
        return Vote(
            self.name,
            stop,
            f"predictions {state}: kappa between successive versions on the stop set "
            f"{_arrow(last)}, mean {last.mean():.4f} (stop at {self.threshold}) "
            "(Bloodgood and Vijay-Shanker 2009)",
        )


class _UncertaintyUnder(StoppingRule):
    """Zhu et al. 2008's two confidence rules: an uncertainty of the unlabeled sample at most
    ``threshold``, ``rounds`` versions in a row (subclasses name which one)."""

    threshold: float
    rounds: int
    source: ClassVar[str] = "Zhu, Wang, Yao and Tsou 2008"
    #: How the reason names the waiting rule, and the value it shows.
    label: ClassVar[str] = ""
    shown: ClassVar[str] = ""

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.rounds:
            return _waiting(self.name, self.label, values.shape[0], self.rounds)
        stop = uncertainty_stop(values, self.threshold, self.rounds)
        return Vote(
            self.name,
            stop,
            f"{self.shown} {_arrow(values[-self.rounds :])} "
            f"({'at or under' if stop else 'above'} {self.threshold}) (Zhu et al. 2008)",
        )


@dataclass(frozen=True)
class OverallUncertainty(_UncertaintyUnder):
    """Zhu et al. 2008: the mean uncertainty of the unlabeled sample is at most
    ``threshold``, ``rounds`` versions in a row."""

    threshold: float = 0.05
    rounds: int = 1
    name: ClassVar[str] = "overall_uncertainty"
    metric: ClassVar[str] = OVERALL_UNCERTAINTY
    label: ClassVar[str] = "overall uncertainty"
    shown: ClassVar[str] = "overall uncertainty of the unlabeled sample"


@dataclass(frozen=True)
class MaxConfidence(_UncertaintyUnder):
    """Zhu et al. 2008: even the most uncertain unlabeled row of the sample has an
    uncertainty of at most ``threshold``, ``rounds`` versions in a row."""

    threshold: float = 0.2
    rounds: int = 1
    name: ClassVar[str] = "max_confidence"
    metric: ClassVar[str] = MAX_UNCERTAINTY
    label: ClassVar[str] = "max-confidence"
    shown: ClassVar[str] = "the most uncertain unlabeled row has uncertainty"


@dataclass(frozen=True)
class UncertaintyVariance(StoppingRule):
    """Ghayoomi 2010: the variance of the selected batch's uncertainty fell at each of the
    last ``window`` versions, each time by more than ``threshold``."""

    window: int = 2
    threshold: float = 0.0
    name: ClassVar[str] = "uncertainty_variance"
    metric: ClassVar[str] = UNCERTAINTY_VARIANCE
    source: ClassVar[str] = "Ghayoomi 2010"

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.window + 1:
            return _waiting(self.name, "uncertainty variance", values.shape[0], self.window + 1)
        stop = _fell_each_time(values, self.window, self.threshold)
        verb = "fell" if stop else "did not fall"
        return Vote(
            self.name,
            stop,
            f"uncertainty variance {verb} at each of the last {self.window} model versions: "
            f"{_arrow(values[-(self.window + 1) :])} (Ghayoomi 2010)",
        )


@dataclass(frozen=True)
class ConfidencePeak(StoppingRule):
    """Vlachos 2008: the mean confidence on the sample dropped at each of the last
    ``rounds`` versions (it has peaked), each time by more than ``tolerance``."""

    rounds: int = 3
    tolerance: float = 0.0
    name: ClassVar[str] = "confidence_peak"
    metric: ClassVar[str] = MEAN_CONFIDENCE
    source: ClassVar[str] = "Vlachos 2008"

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.rounds + 1:
            return _waiting(
                self.name, "confidence on the held-out sample", values.shape[0], self.rounds + 1
            )
        stop = _fell_each_time(values, self.rounds, self.tolerance)
        shown = _arrow(values[-(self.rounds + 1) :])
        if stop:
            reason = (
                f"confidence on the held-out sample has dropped at each of the last "
                f"{self.rounds} model versions since its peak: {shown} (Vlachos 2008)"
            )
        else:
            reason = (
                f"confidence on the held-out sample has not dropped {self.rounds} times in a "
                f"row: {shown} (Vlachos 2008)"
            )
        return Vote(self.name, stop, reason)


@dataclass(frozen=True)
class HoldoutPlateau(StoppingRule):
    """The best holdout accuracy of the last ``k`` versions beats the best before them by
    less than ``min_gain``."""

    k: int = 3
    min_gain: float = 0.005
    name: ClassVar[str] = "holdout_plateau"
    metric: ClassVar[str] = HOLDOUT_ACCURACY
    source: ClassVar[str] = "a learning-curve plateau on labels the strategy did not choose"

    def _vote(self, values, history) -> Vote:
        if values.shape[0] < self.k + 1:
            return _waiting(self.name, "holdout accuracy", values.shape[0], self.k + 1)
        before, recent = float(values[: -self.k].max()), float(values[-self.k :].max())
        gain = recent - before
        stop = gain < self.min_gain
        state = "has reached a plateau" if stop else "still improves"
        return Vote(
            self.name,
            stop,
            f"holdout accuracy {state}: best {recent:.3f} over the last {self.k} model versions "
            f"vs {before:.3f} before, a gain of {100 * gain:.1f} points "
            f"(plateau under {100 * self.min_gain:.1f})",
        )


@dataclass(frozen=True)
class CostBased(StoppingRule):
    """Pullar-Strecker et al. 2022: stop when the next batch is projected to save less, in
    mistakes over the model's lifetime, than its labels cost (``metrics.cost``). Reads the
    holdout accuracy, or without a holdout the model's mean confidence."""

    label_cost: float = 1.0
    error_cost: float = 1.0
    future_predictions: float = 10_000
    name: ClassVar[str] = "cost"
    metric: ClassVar[str] = HOLDOUT_ACCURACY
    source: ClassVar[str] = "Pullar-Strecker, Dost, Frank and Wicker 2022"

    def vote(self, history: History) -> Vote | None:
        metric = HOLDOUT_ACCURACY if HOLDOUT_ACCURACY in history.values else MEAN_CONFIDENCE
        if metric not in history.values:
            return None
        n, accuracy = history.pairs(metric)
        if n.shape[0] < MIN_POINTS or not n[-1] > n[-2]:
            return _waiting(self.name, "cost projection", n.shape[0], MIN_POINTS)
        projection = cost_projection(
            n,
            accuracy,
            label_cost=self.label_cost,
            error_cost=self.error_cost,
            future_predictions=self.future_predictions,
        )
        basis = "holdout accuracy" if metric == HOLDOUT_ACCURACY else "the model's confidence"
        return Vote(
            self.name,
            projection.stop,
            f"cost: {projection.describe()} (from {basis}; Pullar-Strecker et al. 2022)",
        )


RULES: dict[str, type[StoppingRule]] = {
    rule.name: rule
    for rule in (
        ContradictionsLow,
        ClassificationChange,
        StabilizingPredictions,
        OverallUncertainty,
        MaxConfidence,
        UncertaintyVariance,
        ConfidencePeak,
        HoldoutPlateau,
        CostBased,
    )
}
"""Every rule by name."""


def make_rule(name: str, **params) -> StoppingRule:
    """The rule called ``name`` with ``params``; unknown names and parameters are refused."""
    try:
        cls = RULES[name]
    except KeyError:
        raise InputError(
            f"unknown stopping rule {name!r}; choose one of {', '.join(RULES)}"
        ) from None
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise InputError(
            f"stopping rule {name!r} has no parameter {unknown[0]!r}; it takes "
            f"{', '.join(sorted(known)) or 'none'}"
        )
    rule = cls(**params)
    _check_rule(rule)
    return rule


def _check_rule(rule: StoppingRule) -> None:
    for key, value in rule.__dict__.items():
        if key in ("k", "rounds", "window"):
            check_positive_int(value, f"{rule.name}.{key}")
        else:
            check_non_negative(value, f"{rule.name}.{key}")


# -- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AdvicePolicy:
    """Which rules decide "stop", which only raise a check, and the quorum among the first.

    "stop": at least one stop rule votes stop, and at least ``quorum`` of the stop rules
    whose metric is measured do (a rule still waiting for history counts against).
    "check": not "stop", but some rule votes stop, or contradictions look stuck.
    "continue": otherwise.
    """

    stop_rules: tuple[StoppingRule, ...]
    watch_rules: tuple[StoppingRule, ...] = ()
    quorum: float = 1.0

    def __post_init__(self):
        if not self.stop_rules:
            raise InputError("an advice policy needs at least one stop rule")
        q = self.quorum
        if isinstance(q, bool) or not isinstance(q, numbers.Real) or not 0 < q <= 1:
            raise InputError(f"quorum must be in (0, 1], got {q!r}")
        for rule in (*self.stop_rules, *self.watch_rules):
            _check_rule(rule)

    def describe(self) -> str:
        rules = " & ".join(rule.describe() for rule in self.stop_rules)
        return rules if self.quorum == 1 else f"{self.quorum:g} of [{rules}]"


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` says: the advice, one reason per rule, and the votes."""

    advice: str
    reasons: list[str]
    votes: list[Vote] = field(default_factory=list)
    deciding: tuple[str, ...] = ()

    def votes_json(self) -> list[dict]:
        """The votes for the store and the dashboard: rule, vote, whether it decides."""
        return [
            {
                "rule": v.rule,
                "vote": "wait" if v.stop is None else ("stop" if v.stop else "go on"),
                "decides": v.rule in self.deciding,
                "stuck": v.stuck,
            }
            for v in self.votes
        ]


def advise(history: History, policy: AdvicePolicy) -> Advice:
    """Apply ``policy`` to ``history`` (see :class:`AdvicePolicy`)."""
    stop_votes = [v for v in (rule.vote(history) for rule in policy.stop_rules) if v]
    watch_votes = [v for v in (rule.vote(history) for rule in policy.watch_rules) if v]
    votes = stop_votes + watch_votes
    reasons = [v.reason for v in votes]
    if not votes:
        reasons.append(
            f"no stopping signal in metric_history (expected one of {', '.join(ADVICE_METRICS)})"
        )
    deciding = tuple(v.rule for v in stop_votes)
    said_stop = sum(bool(v.stop) for v in stop_votes)
    if said_stop and said_stop >= policy.quorum * len(stop_votes) - 1e-12:
        return Advice("stop", reasons, votes, deciding)
    if any(v.stop for v in votes) or any(v.stuck for v in votes):
        return Advice("check", reasons, votes, deciding)
    return Advice("continue", reasons, votes, deciding)


def first_stop(history: History, policy: AdvicePolicy) -> int | None:
    """The first version at which ``policy`` says "stop" given what was known then."""
    for version in range(len(history)):
        if advise(history.upto(version), policy).advice == "stop":
            return version
    return None


def classic_policy(
    *,
    k: int = 3,
    contradiction_threshold: float = 0.01,
    variance_window: int = 2,
    variance_threshold: float = 0.0,
    confidence_rounds: int = 3,
    confidence_tolerance: float = 0.0,
    accuracy_min_gain: float = 0.005,
    quorum: float = 1.0,
    stuck_min_drop: float = 0.1,
) -> AdvicePolicy:
    """The advice before the advice study: contradictions near zero and, with a holdout, its
    accuracy on a plateau; stabilizing predictions, variance and confidence watch. On the
    study's runs it stopped more than 1 point early in 15% of them (``docs/advice-study.md``).
    """
    return AdvicePolicy(
        stop_rules=(
            ContradictionsLow(k, contradiction_threshold, stuck_min_drop),
            HoldoutPlateau(k, accuracy_min_gain),
        ),
        watch_rules=(
            StabilizingPredictions(),
            UncertaintyVariance(variance_window, variance_threshold),
            ConfidencePeak(confidence_rounds, confidence_tolerance),
        ),
        quorum=quorum,
    )


#: Rules that watch beside every preset's stop rules (with their default parameters): they
#: only ever raise a "check", and the contradiction rule says when the strategy looks stuck.
WATCH_RULES = (
    ContradictionsLow(),
    StabilizingPredictions(),
    HoldoutPlateau(),
    UncertaintyVariance(),
    ConfidencePeak(),
)


def preset_names() -> tuple[str, ...]:
    """The presets the advice study calibrated, the default first."""
    study = _calibration_or_error()
    names = list(study["presets"])
    names.remove(study["default"])
    return (study["default"], *names)


def preset_policy(name: str | None = None) -> AdvicePolicy:
    """The policy of preset ``name`` (default: the study's default), as calibrated by the
    advice study on simulated runs of 11 data sets (``docs/advice-study.md``)."""
    study = _calibration_or_error()
    name = name or study["default"]
    if name not in study["presets"]:
        raise InputError(
            f"unknown advice preset {name!r}; choose one of {', '.join(study['presets'])}"
        )
    stop_rules = tuple(
        make_rule(spec["rule"], **spec["params"]) for spec in study["presets"][name]["rules"]
    )
    deciding = {rule.name for rule in stop_rules}
    return AdvicePolicy(
        stop_rules=stop_rules,
        watch_rules=tuple(rule for rule in WATCH_RULES if rule.name not in deciding),
    )


def default_policy() -> AdvicePolicy:
    """The default advice: the advice study's default preset."""
    return preset_policy()


def _calibration_or_error() -> dict:
    study = calibration()
    if study is None:
        raise InputError(
            f"the advice study's results ({CALIBRATION_FILE}) are missing from the package; "
            "reinstall active-labeling or run bench/advice_study.py"
        )
    return study


def calibration() -> dict | None:
    """What the default advice achieved in the advice study (``docs/advice-study.md``):
    the chosen policies and their figures, or None if the file is missing."""
    import json
    from importlib import resources

    try:
        text = resources.files("active_labeling.metrics").joinpath(CALIBRATION_FILE).read_text()
    except (FileNotFoundError, OSError):
        return None
    return json.loads(text)


def stopping_advice(
    metric_history: pd.DataFrame, *, policy: AdvicePolicy | None = None, **params
) -> tuple[str, list[str]]:
    """Combine the stopping signals of a metric history into ``"continue"``, ``"stop"`` or
    ``"check"``, with one reason per rule in plain words with the numbers.

    Parameters
    ----------
    metric_history : DataFrame
        Either the monitoring dataset in long form (columns ``metric`` and ``value``,
        with ``model_version`` or ``n_labels``, optionally ``computed_at``) or a wide
        table with one column per metric name. Rows are ordered by ``model_version`` (as
        a number) when that column exists, one value per metric and version (the latest
        by ``computed_at``); else by ``n_labels`` (a rerun at the same ``n_labels``
        replaces the earlier row); else taken in order. One model on one dataset:
        several ``model_name`` or ``dataset`` values are refused.
    policy : AdvicePolicy, optional
        The rules and how they combine; default :func:`default_policy`, or
        :func:`classic_policy` when ``params`` are given.
    **params
        The parameters of :func:`classic_policy` (``k``, ``contradiction_threshold``...).

    Examples
    --------
    >>> history = pd.DataFrame({
    ...     "n_labels": [50, 100, 150, 200, 250],
    ...     "contradiction_ratio": [float("nan"), 0.12, 0.008, 0.005, 0.004],
    ... })
    >>> advice, reasons = stopping_advice(history, policy=classic_policy())
    >>> advice
    'stop'
    >>> print(reasons[0])
    contradictions stalled near zero: the last 3 model versions changed 0.8%, 0.5%, 0.4%
    of the sample (threshold 1.0%)
    """
    if policy is None:
        policy = classic_policy(**params) if params else default_policy()
    elif params:
        raise InputError("give either a policy or the classic policy's parameters, not both")
    result = advise(History.from_frame(metric_history), policy)
    return result.advice, result.reasons
