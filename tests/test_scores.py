"""The score functions against hand-computed values and their edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from active_labeling.errors import InputError
from active_labeling.samplers.scores import (
    ROW_SUM_TOLERANCE,
    entropy,
    least_confidence,
    margin,
)

SCORES = [least_confidence, margin, entropy]

PROBA = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.4, 0.4, 0.2],
        [1.0, 0.0, 0.0],
        [1 / 3, 1 / 3, 1 / 3],
        [0.1, 0.3, 0.6],
    ]
)


def test_least_confidence_by_hand():
    np.testing.assert_allclose(least_confidence(PROBA), [0.3, 0.6, 0.0, 2 / 3, 0.4])


def test_margin_by_hand():
    # 1 - (p1 - p2): 1 - (0.7 - 0.2), 1 - 0, 1 - 1, 1 - 0, 1 - (0.6 - 0.3)
    np.testing.assert_allclose(margin(PROBA), [0.5, 1.0, 0.0, 1.0, 0.7])


def test_entropy_by_hand():
    def h(row):
        row = np.asarray(row)
        nz = row[row > 0]
        return -(nz * np.log(nz)).sum() / np.log(3)

    expected = [h(row) for row in PROBA]
    np.testing.assert_allclose(entropy(PROBA), expected)
    # Two spot values worked out on paper: the uniform row is 1, a certain row is 0.
    assert entropy(PROBA)[3] == pytest.approx(1.0)
    assert entropy(PROBA)[2] == 0.0
    # -(0.4 ln 0.4 * 2 + 0.2 ln 0.2) / ln 3 = 0.9602...
    assert entropy(PROBA)[1] == pytest.approx(0.96023, abs=1e-5)


def test_binary_margin_is_twice_least_confidence():
    p = np.linspace(0.5, 1.0, 11)
    proba = np.column_stack([p, 1 - p])
    np.testing.assert_allclose(margin(proba), 2 * least_confidence(proba))


@pytest.mark.parametrize("score", SCORES)
def test_single_class_gives_zero_and_no_nan(score):
    values = score(np.ones((4, 1)))
    np.testing.assert_array_equal(values, np.zeros(4))


@pytest.mark.parametrize("score", SCORES)
def test_zero_probabilities_give_no_nan(score):
    with np.errstate(all="raise"):
        values = score(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.5, 0.0, 0.5]]))
    assert np.isfinite(values).all()


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("k", [2, 3, 10, 50])
def test_scores_stay_in_unit_interval(score, k):
    proba = np.random.default_rng(k).dirichlet(np.full(k, 0.3), size=2000)
    values = score(proba)
    assert values.shape == (2000,)
    assert values.min() >= 0.0 and values.max() <= 1.0


@pytest.mark.parametrize("score", SCORES)
def test_uniform_rows_are_the_most_informative(score):
    k = 4
    proba = np.random.default_rng(0).dirichlet(np.ones(k), size=500)
    uniform = np.full((1, k), 1 / k)
    assert score(uniform)[0] == pytest.approx(score(np.vstack([proba, uniform])).max())


@pytest.mark.parametrize("score", SCORES)
def test_rows_that_do_not_sum_to_one_are_refused_by_row(score):
    proba = PROBA.copy()
    proba[3] = [0.5, 0.5, 0.5]
    with pytest.raises(InputError, match=r"row 3 sums to 1\.5"):
        score(proba)


@pytest.mark.parametrize("score", SCORES)
def test_row_sum_tolerance_is_one_in_a_million(score):
    inside = np.array([[0.5, 0.5 + ROW_SUM_TOLERANCE / 2]])
    outside = np.array([[0.5, 0.5 + ROW_SUM_TOLERANCE * 3]])
    assert np.isfinite(score(inside)).all()
    with pytest.raises(InputError, match="row 0"):
        score(outside)


@pytest.mark.parametrize("score", SCORES)
def test_nan_and_negative_probabilities_are_refused(score):
    with pytest.raises(InputError, match="row 1"):
        score(np.array([[0.5, 0.5], [np.nan, 1.0]]))
    with pytest.raises(InputError, match="row 1 holds a negative"):
        score(np.array([[0.5, 0.5], [-0.5, 1.5]]))


@pytest.mark.parametrize("score", SCORES)
def test_a_vector_is_not_a_probability_matrix(score):
    with pytest.raises(InputError, match="2-D"):
        score(np.array([0.5, 0.5]))


@pytest.mark.parametrize("k", [2, 3, 7, 32, 33, 100])
def test_scores_match_a_sorting_reference_for_any_class_count(k):
    proba = np.random.default_rng(k).dirichlet(np.full(k, 0.5), size=300)
    ordered = np.sort(proba, axis=1)[:, ::-1]
    np.testing.assert_allclose(least_confidence(proba), 1 - ordered[:, 0])
    np.testing.assert_allclose(margin(proba), 1 - (ordered[:, 0] - ordered[:, 1]), atol=1e-12)
