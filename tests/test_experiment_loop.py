"""The simulated loop and the strategy registry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from active_labeling.errors import InputError
from active_labeling.experiment import normalized_auc, simulate_loop
from active_labeling.samplers import BaseSampler
from active_labeling.samplers.registry import (
    MULTI_LABEL_STRATEGIES,
    STRATEGIES,
    make_sampler,
    needs_classifier,
)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return X[::2], y[::2], X[1::2], y[1::2]


@pytest.mark.parametrize("strategy", [s for s in STRATEGIES if s not in MULTI_LABEL_STRATEGIES])
def test_every_strategy_runs_the_loop_without_querying_a_row_twice(strategy, iris):
    """The single-label loop (multi-label data runs in the harness: test_experiment_multilabel)."""
    curve = simulate_loop(
        strategy,
        LogisticRegression(max_iter=500),
        *iris,
        initial_size=6,
        batch_size=4,
        n_rounds=3,
        random_state=0,
    )
    assert curve.n_labeled == [6, 10, 14, 18]
    picked = np.concatenate(curve.selected)
    assert np.unique(picked).shape == picked.shape
    assert all(0 <= a <= 1 for a in curve.accuracy)


def test_same_seed_replays_the_same_run_and_another_seed_differs(iris):
    def run(seed):
        return simulate_loop(
            "random",
            LogisticRegression(max_iter=500),
            *iris,
            initial_size=6,
            batch_size=4,
            n_rounds=3,
            random_state=seed,
        )

    a, b, c = run(1), run(1), run(2)
    assert [x.tolist() for x in a.selected] == [x.tolist() for x in b.selected]
    assert a.accuracy == b.accuracy
    assert [x.tolist() for x in a.selected] != [x.tolist() for x in c.selected]


def test_oversized_budget_is_refused(iris):
    with pytest.raises(InputError, match="exceeds the pool of 75 rows"):
        simulate_loop(
            "margin", LogisticRegression(), *iris, initial_size=10, batch_size=10, n_rounds=7
        )


def test_normalized_auc_by_hand():
    # Trapezoid: (0.5+0.7)/2*10 + (0.7+0.9)/2*10 = 14 over a range of 20 -> 70 %.
    assert normalized_auc([10, 20, 30], [0.5, 0.7, 0.9]) == pytest.approx(70.0)
    assert normalized_auc([10, 30], [0.8, 0.8]) == pytest.approx(80.0)


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_registry_builds_each_strategy(strategy):
    clf = LogisticRegression()
    sampler = make_sampler(strategy, classifier=clf, batch_size=3, random_state=0)
    assert isinstance(sampler, STRATEGIES[strategy]) and isinstance(sampler, BaseSampler)
    assert sampler.batch_size == 3
    if needs_classifier(strategy) and strategy != "committee":
        assert sampler.classifier is clf and sampler.prefit


def test_registry_errors_name_the_strategy_and_parameter():
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        make_sampler("nope")
    with pytest.raises(InputError, match="'beta'"):
        make_sampler("margin", classifier=LogisticRegression(), beta=3)
    with pytest.raises(InputError, match="needs a classifier"):
        make_sampler("margin")
