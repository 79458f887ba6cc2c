"""The cost-based stop: is the next batch of labels worth what it costs?

Pullar-Strecker, Dost, Frank and Wicker 2022 ("Hitting the target: stopping active learning
at the cost-based optimum", Machine Learning 113) judge a stopping point by its total cost:
the labels bought plus the mistakes the model will make over its lifetime,

    cost(n) = label_cost * n + error_cost * future_predictions * error(n).

Labeling pays while one more batch of ``b`` labels lowers the second term by more than it
adds to the first. The error at ``n + b`` is not known before the labels are bought, so it
is projected from a learning curve fitted to the errors measured so far: the inverse power
law ``error(n) = c + a * n ** -alpha`` (Figueroa et al. 2012, "Predicting sample size
required for classification performance"), which flattens towards the error ``c`` the model
would reach with unlimited labels. The projection is only as good as the errors it is fitted
to: a holdout's, or, without one, the model's own confidence, which is optimistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from active_labeling.errors import InputError
from active_labeling.metrics._checks import check_non_negative, check_positive_int

#: Fewest measured points a curve is fitted to.
MIN_POINTS = 3


@dataclass(frozen=True)
class LearningCurve:
    """``error(n) = floor + scale * n ** -exponent``, fitted to measured errors."""

    floor: float
    scale: float
    exponent: float

    def error(self, n: float) -> float:
        return float(self.floor + self.scale * float(n) ** -self.exponent)


#: Exponents tried by the fit, 0.05 to 3 in steps of 0.01 (learning curves of classifiers
#: fall about as n ** -0.5; Figueroa et al. report exponents between 0.1 and 1.5).
_EXPONENTS = np.round(np.arange(0.05, 3.0 + 1e-9, 0.01), 2)


def fit_learning_curve(n_labels, errors) -> LearningCurve:
    """Least-squares fit of the inverse power law to ``(n_labels, error)`` points.

    Bounded so that the curve never rises (``scale >= 0``), flattens at an error in
    [0, 1], and bends like learning curves do (``exponent`` in [0.05, 3]). For each exponent
    of a fine grid the floor and scale have a closed form (a line in ``n ** -exponent``);
    the exponent with the smallest squared error wins. Deterministic, and fast enough to
    replay over thousands of simulated runs.

    Examples
    --------
    >>> curve = fit_learning_curve([20, 40, 80, 160], [0.30, 0.2, 0.14, 0.11])
    >>> 0.0 <= curve.floor < 0.11 and curve.error(320) < 0.11
    True
    """
    n = np.asarray(n_labels, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if n.shape != e.shape or n.ndim != 1:
        raise InputError("n_labels and errors must be two 1-D series of the same length")
    if n.shape[0] < MIN_POINTS:
        raise InputError(f"a learning curve needs {MIN_POINTS} points, got {n.shape[0]}")
    if not (np.isfinite(n).all() and np.isfinite(e).all()) or (n <= 0).any():
        raise InputError("n_labels must be positive and errors finite")
    x = n[None, :] ** -_EXPONENTS[:, None]  # one row per exponent
    x_mean, e_mean = x.mean(axis=1), e.mean()
    x_centred = x - x_mean[:, None]
    denominator = (x_centred**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(denominator > 0, (x_centred @ (e - e_mean)) / denominator, 0.0)
    scale = np.maximum(scale, 0.0)  # a learning curve does not rise
    floor = e_mean - scale * x_mean
    # A floor outside [0, 1]: clip it and refit the scale alone, through that floor.
    clipped = np.clip(floor, 0.0, 1.0)
    redo = clipped != floor
    if redo.any():
        xx = (x[redo] ** 2).sum(axis=1)
        refit = np.where(xx > 0, (x[redo] @ e - clipped[redo] * x[redo].sum(axis=1)) / xx, 0.0)
        scale[redo] = np.maximum(refit, 0.0)
        floor = clipped
    residual = ((floor[:, None] + scale[:, None] * x - e[None, :]) ** 2).sum(axis=1)
    best = int(np.argmin(residual))  # ties: the smallest exponent
    return LearningCurve(float(floor[best]), float(scale[best]), float(_EXPONENTS[best]))


@dataclass(frozen=True)
class CostProjection:
    """What one more batch is projected to cost and to be worth."""

    n_labels: int
    batch_size: int
    error_now: float
    error_next: float
    batch_cost: float
    value: float
    future_predictions: float

    @property
    def stop(self) -> bool:
        """True when the next batch is projected to be worth less than it costs."""
        return self.value < self.batch_cost

    def describe(self) -> str:
        verdict = "worth less than" if self.stop else "worth more than"
        return (
            f"the next {self.batch_size} labels cost {self.batch_cost:,.4g}; the learning "
            f"curve fitted so far projects the error {100 * self.error_now:.2f}% → "
            f"{100 * self.error_next:.2f}%, {self.value:,.4g} saved over "
            f"{self.future_predictions:,.0f} future predictions: {verdict} their cost"
        )


def cost_projection(
    n_labels,
    accuracy,
    *,
    label_cost: float = 1.0,
    error_cost: float = 1.0,
    future_predictions: float = 10_000,
    batch_size: int | None = None,
) -> CostProjection:
    """The projected cost and value of the next batch, from the accuracy measured so far.

    Parameters
    ----------
    n_labels, accuracy : array-like of shape (n_versions,)
        Labels each model version was trained on, and its measured accuracy (a holdout's;
        without one, the model's mean confidence), oldest first.
    label_cost, error_cost : float
        What one label costs, and one wrong prediction, in the same unit.
    future_predictions : float
        How many predictions the model will make over its lifetime.
    batch_size : int, optional
        Labels in the next batch; default, the size of the last batch.

    Examples
    --------
    >>> n = [20, 40, 60, 80, 100]
    >>> acc = [0.70, 0.80, 0.84, 0.86, 0.87]
    >>> cost_projection(n, acc, label_cost=1, error_cost=1, future_predictions=100).stop
    True
    >>> cost_projection(n, acc, label_cost=1, error_cost=1, future_predictions=1e6).stop
    False
    """
    label_cost = check_non_negative(label_cost, "label_cost")
    error_cost = check_non_negative(error_cost, "error_cost")
    future_predictions = check_non_negative(future_predictions, "future_predictions")
    n = np.asarray(n_labels, dtype=np.float64)
    a = np.asarray(accuracy, dtype=np.float64)
    keep = np.isfinite(n) & np.isfinite(a)
    n, a = n[keep], a[keep]
    if batch_size is None:
        if n.shape[0] < 2 or not n[-1] > n[-2]:
            raise InputError("batch_size: give it, or a history whose last batch added labels")
        batch_size = round(float(n[-1] - n[-2]))
    batch_size = check_positive_int(batch_size, "batch_size")
    curve = fit_learning_curve(n, 1.0 - a)
    now, after = curve.error(n[-1]), curve.error(n[-1] + batch_size)
    value = error_cost * future_predictions * max(now - after, 0.0)
    return CostProjection(
        n_labels=int(n[-1]),
        batch_size=batch_size,
        error_now=now,
        error_next=after,
        batch_cost=label_cost * batch_size,
        value=value if math.isfinite(value) else 0.0,
        future_predictions=future_predictions,
    )
