"""When labeling stops paying: the stopping rules and the advice that combines them.

Each rule reads a history of one metric, one value per model version, oldest first, and
answers a bool. :func:`stopping_advice` reads them all from the monitoring metrics and
answers ``"continue"``, ``"stop"`` or ``"check"``, with its reasons in words. It advises;
it never stops anything itself.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_history, check_non_negative, check_positive_int
from active_labeling.samplers.scores import check_proba

#: Metric names the advice reads (the ``metric`` column of the monitoring dataset).
CONTRADICTION_RATIO = "contradiction_ratio"
UNCERTAINTY_VARIANCE = "uncertainty_variance"
MEAN_CONFIDENCE = "mean_confidence"
HOLDOUT_ACCURACY = "holdout_accuracy"
ADVICE_METRICS = (CONTRADICTION_RATIO, UNCERTAINTY_VARIANCE, MEAN_CONFIDENCE, HOLDOUT_ACCURACY)


def uncertainty_variance(uncertainties_per_batch, window: int = 1) -> float:
    """Variance of the uncertainty scores of the most recently selected batches.

    Ghayoomi 2010 ("Using variance as a stopping criterion for active learning of frame
    assignment"; tutorial "When should we stop labeling?") tracks, at each iteration, the
    variance of the uncertainty of the batch the strategy selects:
    ``V(t) = 1/|U| * sum_{u in U} (u - mean(U))**2`` over the scores ``U`` of the last
    ``window`` batches pooled (``window=1``, the default, is the paper's quantity). Record
    it once per model version and give the series to :func:`variance_stop`.

    Parameters
    ----------
    uncertainties_per_batch : sequence of array-like
        One entry per batch, oldest first: the uncertainty scores (least confidence,
        margin or entropy, as the query sampler computed them) of the rows selected in that
        batch. A scalar entry counts as a batch of one score, so a series of per-batch
        means gives the variance of those means over the window.
    window : int
        How many of the latest batches to pool.

    Returns
    -------
    float, >= 0

    Examples
    --------
    >>> round(uncertainty_variance([[0.2, 0.4], [0.1, 0.3]]), 6)
    0.01
    >>> round(uncertainty_variance([[0.2, 0.4], [0.1, 0.3]], window=2), 6)
    0.0125
    """
    window = check_positive_int(window, "window")
    if isinstance(uncertainties_per_batch, np.ndarray) and uncertainties_per_batch.ndim < 2:
        uncertainties_per_batch = list(uncertainties_per_batch)
    batches = list(uncertainties_per_batch)
    if not batches:
        raise InputError("uncertainties_per_batch is empty: there is no batch to measure")
    recent = []
    for position, batch in enumerate(batches[-window:], start=max(len(batches) - window, 0)):
        try:
            scores = np.asarray(batch, dtype=np.float64).ravel()
        except (TypeError, ValueError) as exc:
            raise InputError(
                f"uncertainties_per_batch entry {position} must hold numbers: {exc}"
            ) from None
        if not np.isfinite(scores).all():
            raise InputError(f"uncertainties_per_batch entry {position} has a non-finite score")
        recent.append(scores)
    pooled = np.concatenate(recent)
    if pooled.size == 0:
        raise InputError(f"the last {window} batch(es) of uncertainties_per_batch are empty")
    return float(pooled.var())


def _fell_each_time(values: np.ndarray, steps: int, min_drop: float) -> bool:
    """Whether each of the last ``steps`` changes was a drop larger than ``min_drop``."""
    if values.shape[0] < steps + 1:
        return False
    changes = np.diff(values[-(steps + 1) :])
    return bool((changes < -min_drop).all())


def variance_stop(history, window: int = 2, threshold: float = 0.0) -> bool:
    """Ghayoomi 2010's stopping rule: the uncertainty variance keeps falling.

    The variance of the selected batch's uncertainty rises while the model is still
    finding new kinds of uncertain rows, then falls once what is left looks alike. The
    rule stops when it fell at each of the last ``window`` model versions, each time by
    more than ``threshold``: ``V(t-i) < V(t-i-1) - threshold`` for ``i = 0 .. window-1``.
    ``threshold=0`` is the paper's Variance Model, a positive one its Extended Variance
    Model. The rule looks at the trend, not the level, because the level depends on the
    uncertainty measure and the data.

    Parameters
    ----------
    history : array-like of shape (n_versions,)
        :func:`uncertainty_variance` of each model version, oldest first (NaN entries are
        skipped).
    window : int
        Consecutive drops needed (the paper's n; default 2).
    threshold : float
        Smallest drop that counts (the paper's m; default 0).

    Returns
    -------
    bool
        False while the history is shorter than ``window + 1``.

    Examples
    --------
    >>> variance_stop([0.02, 0.05, 0.04, 0.03])
    True
    >>> variance_stop([0.02, 0.05, 0.04, 0.045])
    False
    >>> variance_stop([0.02, 0.05, 0.04, 0.03], threshold=0.015)  # drops of 0.01 only
    False
    """
    values = check_history(history, "history")
    window = check_positive_int(window, "window")
    threshold = check_non_negative(threshold, "threshold")
    return _fell_each_time(values, window, threshold)


def mean_confidence(proba) -> float:
    """Mean confidence of a model on a fixed unlabeled sample, for :func:`confidence_stop`.

    ``conf(t) = 1/|S| * sum_{x in S} max_k P_t(k | x)``, the mean probability of the
    predicted class over the stopping set ``S`` (Vlachos 2008 uses the same average for
    maximum-entropy models; for SVMs, the mean distance to the margin).

    Parameters
    ----------
    proba : array-like of shape (n, k)
        ``predict_proba`` of the model version on the stopping set.

    Returns
    -------
    float in [1/k, 1]

    Examples
    --------
    >>> mean_confidence([[0.9, 0.1], [0.6, 0.4]])
    0.75
    """
    proba = check_proba(proba, "proba")
    if proba.shape[0] == 0:
        raise InputError("proba is empty: there is no row to measure")
    return float(proba.max(axis=1).mean())


def confidence_stop(confidence_history, rounds: int = 3, tolerance: float = 0.0) -> bool:
    """Vlachos 2008's stopping rule: confidence on a held-out unlabeled set has peaked.

    "A stopping criterion for active learning" (Computer Speech & Language 22(3)): the
    model's confidence on a fixed unlabeled stopping set rises while labels teach it, peaks,
    then drops once the strategy is left with rows that only confuse it. The rule stops
    when the confidence dropped at each of the last ``rounds`` model versions, each time by
    more than ``tolerance``.

    Parameters
    ----------
    confidence_history : array-like of shape (n_versions,)
        :func:`mean_confidence` of each model version on the same fixed unlabeled sample
        (the contradiction sample serves), oldest first; NaN entries are skipped.
    rounds : int
        Consecutive drops needed (default 3).
    tolerance : float
        Smallest drop that counts (default 0).

    Returns
    -------
    bool
        False while the history is shorter than ``rounds + 1``.

    Examples
    --------
    >>> confidence_stop([0.70, 0.82, 0.90, 0.89, 0.88, 0.86])
    True
    >>> confidence_stop([0.70, 0.82, 0.90, 0.89, 0.91, 0.86])
    False
    """
    values = check_history(confidence_history, "confidence_history")
    rounds = check_positive_int(rounds, "rounds")
    tolerance = check_non_negative(tolerance, "tolerance")
    return _fell_each_time(values, rounds, tolerance)


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


def _histories(metric_history) -> dict[str, np.ndarray]:
    """Each advice metric's values, oldest first, from a long or a wide table."""
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
    if key is not None and "metric" in table.columns:
        table = table.drop_duplicates(["metric", key], keep="last")
    if {"metric", "value"} <= set(table.columns):
        series = {
            name: table.loc[table["metric"] == name, "value"]
            for name in ADVICE_METRICS
            if (table["metric"] == name).any()
        }
    else:
        series = {name: table[name] for name in ADVICE_METRICS if name in table.columns}
    histories = {}
    for name, values in series.items():
        try:
            histories[name] = check_history(pd.to_numeric(values).to_numpy(), name)
        except (TypeError, ValueError) as exc:
            raise InputError(f"metric_history: {name} must hold numbers: {exc}") from None
    return histories


def _percent(values) -> str:
    return ", ".join(f"{100 * v:.1f}%" for v in values)


def _arrow(values) -> str:
    return " → ".join(f"{v:.4g}" for v in values)


def stopping_advice(
    metric_history: pd.DataFrame,
    *,
    k: int = 3,
    contradiction_threshold: float = 0.01,
    variance_window: int = 2,
    variance_threshold: float = 0.0,
    confidence_rounds: int = 3,
    confidence_tolerance: float = 0.0,
    accuracy_min_gain: float = 0.005,
    quorum: float = 0.5,
    stuck_min_drop: float = 0.1,
) -> tuple[str, list[str]]:
    """Combine the stopping signals into ``"continue"``, ``"stop"`` or ``"check"``.

    Signals, each read from its own metric (NaN and missing values are skipped):

    - ``contradiction_ratio``: says stop when each of the last ``k`` values is at most
      ``contradiction_threshold`` (the tutorial's recommended procedure: "if contradictions
      are low, stop labeling"). Above the threshold throughout the last ``k`` values and
      down by less than ``stuck_min_drop`` (a share of the first of them) raises a check:
      the strategy may be stuck ("if contradictions are not decreasing, change for a
      strategy selecting easier batches").
    - ``uncertainty_variance``: :func:`variance_stop` with ``variance_window`` and
      ``variance_threshold`` (Ghayoomi 2010).
    - ``mean_confidence``: :func:`confidence_stop` with ``confidence_rounds`` and
      ``confidence_tolerance`` (Vlachos 2008).
    - ``holdout_accuracy`` (only with a holdout set): says stop when the best of the last
      ``k`` values beats the best before them by less than ``accuracy_min_gain``.

    A signal votes only once its history is long enough. The advice is ``"stop"`` when
    the ground-truth signals agree (holdout accuracy and contradictions, whichever are
    present, and at least one of them is), and at least a ``quorum`` share of the signals
    that vote say stop. It is ``"check"`` when some signal says stop without that
    agreement, or when contradictions look stuck; otherwise ``"continue"``. The variance
    and confidence rules alone never give "stop": they are heuristics without labels.

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
    k, contradiction_threshold, variance_window, variance_threshold, confidence_rounds, \
confidence_tolerance, accuracy_min_gain, quorum, stuck_min_drop
        The rules' parameters, defaults as above (``quorum`` in (0, 1]).

    Returns
    -------
    (str, list of str)
        The advice and one reason per signal, in plain words with the numbers.

    Examples
    --------
    >>> history = pd.DataFrame({
    ...     "n_labels": [50, 100, 150, 200, 250],
    ...     "contradiction_ratio": [float("nan"), 0.12, 0.008, 0.005, 0.004],
    ... })
    >>> advice, reasons = stopping_advice(history)
    >>> advice
    'stop'
    >>> print(reasons[0])
    contradictions stalled near zero: the last 3 model versions changed 0.8%, 0.5%, 0.4%
    of the sample (threshold 1.0%)
    """
    k = check_positive_int(k, "k")
    contradiction_threshold = check_non_negative(contradiction_threshold, "contradiction_threshold")
    accuracy_min_gain = check_non_negative(accuracy_min_gain, "accuracy_min_gain")
    variance_window = check_positive_int(variance_window, "variance_window")
    confidence_rounds = check_positive_int(confidence_rounds, "confidence_rounds")
    variance_threshold = check_non_negative(variance_threshold, "variance_threshold")
    confidence_tolerance = check_non_negative(confidence_tolerance, "confidence_tolerance")
    stuck_min_drop = check_non_negative(stuck_min_drop, "stuck_min_drop")
    if isinstance(quorum, bool) or not isinstance(quorum, numbers.Real) or not 0 < quorum <= 1:
        raise InputError(f"quorum must be in (0, 1], got {quorum!r}")
    histories = _histories(metric_history)

    votes: dict[str, bool] = {}
    reasons: list[str] = []
    stuck = False

    values = histories.get(CONTRADICTION_RATIO)
    if values is not None:
        if values.shape[0] < k:
            reasons.append(f"contradictions: {values.shape[0]} value(s) so far, the rule needs {k}")
        else:
            last = values[-k:]
            votes[CONTRADICTION_RATIO] = bool((last <= contradiction_threshold).all())
            if votes[CONTRADICTION_RATIO]:
                reasons.append(
                    f"contradictions stalled near zero: the last {k} model versions changed "
                    f"{_percent(last)} of the sample "
                    f"(threshold {_percent([contradiction_threshold])})"
                )
            elif (
                k >= 2  # one value says nothing about a trend
                and (last > contradiction_threshold).all()
                and last[-1] > (1.0 - stuck_min_drop) * last[0]
            ):
                stuck = True
                reasons.append(
                    f"contradictions are not decreasing: {_percent(last)} over the last {k} "
                    "model versions, far from zero; the query strategy may be stuck, try one "
                    "that picks easier rows"
                )
            else:
                reasons.append(
                    f"contradictions still at {_percent(last)} over the last {k} model "
                    f"versions (stop below {_percent([contradiction_threshold])})"
                )

    values = histories.get(HOLDOUT_ACCURACY)
    if values is not None:
        if values.shape[0] < k + 1:
            reasons.append(
                f"holdout accuracy: {values.shape[0]} value(s) so far, the rule needs {k + 1}"
            )
        else:
            before, recent = float(values[:-k].max()), float(values[-k:].max())
            gain = recent - before
            votes[HOLDOUT_ACCURACY] = gain < accuracy_min_gain
            state = "has reached a plateau" if votes[HOLDOUT_ACCURACY] else "still improves"
            reasons.append(
                f"holdout accuracy {state}: best {recent:.3f} over the last {k} model versions "
                f"vs {before:.3f} before, a gain of {100 * gain:.1f} points "
                f"(plateau under {100 * accuracy_min_gain:.1f})"
            )

    values = histories.get(UNCERTAINTY_VARIANCE)
    if values is not None:
        if values.shape[0] < variance_window + 1:
            reasons.append(
                f"uncertainty variance: {values.shape[0]} value(s) so far, the rule needs "
                f"{variance_window + 1}"
            )
        else:
            votes[UNCERTAINTY_VARIANCE] = variance_stop(values, variance_window, variance_threshold)
            shown = _arrow(values[-(variance_window + 1) :])
            verb = "fell" if votes[UNCERTAINTY_VARIANCE] else "did not fall"
            reasons.append(
                f"uncertainty variance {verb} at each of the last {variance_window} model "
                f"versions: {shown} (Ghayoomi 2010)"
            )

    values = histories.get(MEAN_CONFIDENCE)
    if values is not None:
        if values.shape[0] < confidence_rounds + 1:
            reasons.append(
                f"confidence on the held-out sample: {values.shape[0]} value(s) so far, the "
                f"rule needs {confidence_rounds + 1}"
            )
        else:
            votes[MEAN_CONFIDENCE] = confidence_stop(
                values, confidence_rounds, confidence_tolerance
            )
            shown = _arrow(values[-(confidence_rounds + 1) :])
            if votes[MEAN_CONFIDENCE]:
                reasons.append(
                    f"confidence on the held-out sample has dropped at each of the last "
                    f"{confidence_rounds} model versions since its peak: {shown} "
                    "(Vlachos 2008)"
                )
            else:
                reasons.append(
                    f"confidence on the held-out sample has not dropped {confidence_rounds} "
                    f"times in a row: {shown} (Vlachos 2008)"
                )

    if not histories:
        reasons.append(
            f"no stopping signal in metric_history (expected one of {', '.join(ADVICE_METRICS)})"
        )
    if not votes:
        return "continue", reasons

    ground_truth = [
        votes[name] for name in (HOLDOUT_ACCURACY, CONTRADICTION_RATIO) if name in votes
    ]
    share = sum(votes.values()) / len(votes)
    if ground_truth and all(ground_truth) and share >= quorum:
        return "stop", reasons
    if any(votes.values()) or stuck:
        return "check", reasons
    return "continue", reasons
