"""One simulated active-learning run: an oracle answers with the true labels.

Start from a random labeled sample of the pool, then repeat: fit the model, measure it on
the test set, let the strategy pick a batch among the unlabeled rows, reveal their labels.
Everything random flows from one ``random_state`` (the initial sample, every model's and
every strategy's seed), so a run is replayable.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.metrics import accuracy_score

from active_labeling.errors import InputError
from active_labeling.samplers._validation import as_generator, seed_estimator, seed_from
from active_labeling.samplers.base import take_rows
from active_labeling.samplers.registry import make_sampler, needs_classifier, strategy_view


@dataclass
class LearningCurve:
    """Test accuracy after each labeling round of one run."""

    strategy: str
    seed: int | None
    n_labeled: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    selected: list[np.ndarray] = field(default_factory=list)

    @property
    def auc(self) -> float:
        """Normalized area under the accuracy curve, in percent."""
        return normalized_auc(self.n_labeled, self.accuracy)


def normalized_auc(n_labeled, accuracy) -> float:
    """Area under the accuracy curve divided by the range of labels, in percent.

    The trapezoid rule over the labeling rounds, as in Table 1 of the tutorial: a strategy
    at 0.9 accuracy from start to end scores 90.

    Examples
    --------
    >>> normalized_auc([10, 20, 30], [0.5, 0.7, 0.9])
    70.0
    """
    x = np.asarray(n_labeled, dtype=float)
    y = np.asarray(accuracy, dtype=float)
    if x.shape[0] < 2:
        return float(100 * y[0]) if y.size else float("nan")
    return float(100 * np.trapezoid(y, x) / (x[-1] - x[0]))


def simulate_loop(
    strategy: str,
    model,
    X_pool: np.ndarray,
    y_pool: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    initial_size: int,
    batch_size: int,
    n_rounds: int,
    random_state=None,
    strategy_params: dict | None = None,
) -> LearningCurve:
    """Run the loop for ``n_rounds`` batches and return the learning curve.

    Parameters
    ----------
    strategy : str
        A name of ``active_labeling.samplers.registry.STRATEGIES``.
    model : classifier
        Unfitted template; a clone is fitted on the labeled rows at every round. When it
        is a pipeline, the distance strategies see the rows through its preprocessing
        (``samplers.registry.strategy_view``), as in a project.
    X_pool, y_pool : arrays
        The rows the strategy may query, with the labels the oracle reveals.
    X_test, y_test : arrays
        Held-out rows on which accuracy is measured.
    initial_size : int
        Rows labeled at random before the first round.
    batch_size : int
        Rows labeled per round.
    n_rounds : int
        Number of query rounds; the curve has ``n_rounds + 1`` points.
    random_state : None, int or numpy Generator
        Seed of the initial sample and of every strategy's randomness.
    strategy_params : dict, optional
        Further constructor parameters of the strategy.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = load_iris(return_X_y=True)
    >>> curve = simulate_loop("margin", LogisticRegression(max_iter=500), X[::2], y[::2],
    ...                       X[1::2], y[1::2], initial_size=6, batch_size=3, n_rounds=4,
    ...                       random_state=0)
    >>> curve.n_labeled
    [6, 9, 12, 15, 18]
    """
    n_pool = X_pool.shape[0]
    if initial_size < 1 or initial_size + batch_size * n_rounds > n_pool:
        raise InputError(
            f"initial_size={initial_size} plus {n_rounds} rounds of {batch_size} exceeds the "
            f"pool of {n_pool} rows"
        )
    rng = as_generator(random_state)
    y_pool = np.asarray(y_pool)
    labeled = np.zeros(n_pool, dtype=bool)
    labeled[initial_sample(y_pool, initial_size, rng)] = True
    seed = int(random_state) if isinstance(random_state, numbers.Integral) else None
    curve = LearningCurve(strategy, seed)
    for round_ in range(n_rounds + 1):
        rows = np.flatnonzero(labeled)
        fitted = seed_estimator(clone(model), rng).fit(take_rows(X_pool, rows), y_pool[rows])
        curve.n_labeled.append(int(labeled.sum()))
        curve.accuracy.append(float(accuracy_score(y_test, fitted.predict(X_test))))
        if round_ == n_rounds:
            break
        classifier, X_seen = strategy_view(strategy, fitted, X_pool)
        sampler = make_sampler(
            strategy,
            classifier=classifier if needs_classifier(strategy) else None,
            batch_size=batch_size,
            random_state=seed_from(rng),
            **(strategy_params or {}),
        )
        sampler.fit(take_rows(X_seen, rows), y_pool[rows])
        unlabeled = np.flatnonzero(~labeled)
        picked = unlabeled[sampler.select_samples(take_rows(X_seen, unlabeled))]
        labeled[picked] = True
        curve.selected.append(picked)
    return curve


def initial_sample(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` random positions holding at least two classes (when ``y`` has two).

    A first model needs two classes; a uniform draw that hits only one is redrawn with one
    row swapped for a row of another class.
    """
    picked = rng.choice(y.shape[0], size=size, replace=False)
    if size >= 2 and np.unique(y[picked]).shape[0] < 2:
        others = np.flatnonzero(y != y[picked[0]])
        if others.size:
            picked[-1] = rng.choice(others)
    return picked
