"""Multi-label strategies on hand-computed cases, and the refusals between model kinds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from active_labeling.errors import InputError
from active_labeling.samplers import (
    BADGESampler,
    LabelCardinalitySampler,
    MarginSampler,
    MaxBinaryUncertaintySampler,
    MeanBinaryUncertaintySampler,
    MMCSampler,
    WKMeansSampler,
    iter_chunks,
)
from active_labeling.samplers.registry import (
    MULTI_LABEL_STRATEGIES,
    check_strategy_kind,
    make_sampler,
    multilabel_params,
)

#: One row of independent class probabilities per pool row (3 classes).
P = np.array([[0.5, 0.9, 0.1], [0.8, 0.8, 0.8], [0.6, 0.5, 0.0], [1.0, 0.0, 1.0]])


class Fixed:
    """A fitted multi-label model (``n_outputs_`` > 1) that returns ``P`` row by row: the
    pool's first column is the row of ``P``."""

    classes_ = np.arange(3)
    n_outputs_ = 3

    def predict_proba(self, X):
        return P[np.asarray(X)[:, 0].astype(int)]


POOL = np.column_stack([np.arange(4), np.ones(4)])
# Label sets of 1 and 2 classes: mean cardinality 1.5.
LABELED, Y_LABELED = np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([[1, 0, 0], [1, 1, 0]])


def test_mean_and_max_binary_uncertainty_by_hand():
    # Binary uncertainties 1 - |2p - 1|: row 0 [1, .2, .2], row 1 [.4, .4, .4], row 2
    # [.8, 1, 0], row 3 [0, 0, 0]. Means .467, .4, .6, 0; maxima 1, .4, 1, 0.
    mean = MeanBinaryUncertaintySampler(Fixed(), 4, prefit=True).fit()
    np.testing.assert_allclose(mean.score_samples(POOL), [1.4 / 3, 0.4, 0.6, 0.0])
    assert mean.select_samples(POOL).tolist() == [2, 0, 1, 3]
    best = MaxBinaryUncertaintySampler(Fixed(), 4, prefit=True).fit()
    np.testing.assert_allclose(best.score_samples(POOL), [1.0, 0.4, 1.0, 0.0])
    assert best.select_samples(POOL).tolist() == [0, 2, 1, 3]  # the tie: earlier row first


def test_mmc_by_hand_with_every_labeled_item_holding_one_class():
    """All labeled items hold one class, so every row is predicted to hold one: its top
    class is +1 (ties: the earlier class), the others -1, and the score is
    1/3 * (sum over +1 of 1 - p, plus sum over -1 of p)."""
    sampler = MMCSampler(Fixed(), 4, prefit=True).fit(LABELED, np.array([[1, 0, 0], [0, 1, 0]]))
    # row 0: +1 on 0.9: 0.1 + 0.5 + 0.1; row 1: +1 on the first 0.8: 0.2 + 0.8 + 0.8;
    # row 2: +1 on 0.6: 0.4 + 0.5 + 0; row 3: +1 on the first 1.0: 0 + 0 + 1.
    expected = np.array([0.7, 1.8, 0.9, 1.0]) / 3
    np.testing.assert_allclose(sampler.score_samples(POOL), expected)
    assert sampler.select_samples(POOL).tolist() == [1, 3, 2, 0]


def test_mmc_learns_the_label_count_from_sorted_normalized_probabilities():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    Y = (X > 0.3).astype(int)
    model = OneVsRestClassifier(LogisticRegression()).fit(X, Y)
    sampler = MMCSampler(model, 5, prefit=True).fit(X, Y)
    counts = sampler.label_counts_.predict(
        -np.sort(-model.predict_proba(X), axis=1)
        / model.predict_proba(X).sum(axis=1, keepdims=True)
    )
    # The logistic regression recovers most items' number of classes.
    assert (counts == Y.sum(axis=1)).mean() > 0.6
    # The paper's score with those counts, computed by hand for the first pool rows.
    pool = rng.normal(size=(5, 4))
    proba = model.predict_proba(pool)
    features = -np.sort(-proba, axis=1) / proba.sum(axis=1, keepdims=True)
    m = sampler.label_counts_.predict(features)
    by_hand = []
    for p, count in zip(proba, m, strict=True):
        top = set(np.argsort(-p, kind="stable")[:count].tolist())
        by_hand.append(sum((1 - p[j]) if j in top else p[j] for j in range(4)) / 4)
    np.testing.assert_allclose(sampler.score_samples(pool), by_hand, atol=1e-9)


def test_label_cardinality_inconsistency_by_hand():
    # Mean cardinality 1.5. Thresholds 0.5: rows predicted with 2, 3, 2, 2 classes.
    sampler = LabelCardinalitySampler(Fixed(), 4, prefit=True).fit(LABELED, Y_LABELED)
    assert sampler.mean_cardinality_ == 1.5
    np.testing.assert_allclose(sampler.score_samples(POOL), [0.5 / 3, 1.5 / 3, 0.5 / 3, 0.5 / 3])
    assert sampler.select_samples(POOL).tolist() == [1, 0, 2, 3]
    # Thresholds 0.7, 0.95, 0.5: 0, 2, 0, 2 classes.
    tuned = LabelCardinalitySampler(Fixed(), 4, thresholds=[0.7, 0.95, 0.5], prefit=True)
    tuned.fit(None, Y_LABELED)
    np.testing.assert_allclose(tuned.score_samples(POOL), [1.5 / 3, 0.5 / 3, 1.5 / 3, 0.5 / 3])
    with pytest.raises(InputError, match="thresholds must be 3 probabilities"):
        LabelCardinalitySampler(Fixed(), 2, thresholds=[0.5], prefit=True).fit(
            None, Y_LABELED
        ).select_samples(POOL)


def test_badge_on_a_multilabel_model_starts_from_the_largest_sigmoid_gradient():
    # A = p - 1[p >= 0.5]: row 0 [-.5, -.1, .1], row 1 [-.2] * 3, row 2 [-.4, -.5, 0],
    # row 3 zeros. The last-layer input of a model without hidden layers is the features,
    # h = (i, 1), so the squared gradient norm |A|^2 (i^2 + 1) is 0.27, 0.24, 2.05, 0.
    sampler = BADGESampler(Fixed(), 1, prefit=True, random_state=0).fit()
    assert sampler.select_samples(POOL).tolist() == [2]
    # With a threshold of 0.95 for the first class, only row 3 holds it: A is then
    # [.5, -.1, .1], [.8, -.2, -.2], [.6, -.5, 0], 0 and the norms 0.27, 1.44, 3.05, 0.
    tuned = BADGESampler(Fixed(), 1, thresholds=[0.95, 0.5, 0.5], prefit=True).fit()
    assert tuned.select_samples(POOL).tolist() == [2]


def test_wkmeans_weighs_a_multilabel_pool_with_the_binary_uncertainty():
    # beta = 1: the candidates are the batch, ranked by mean binary uncertainty.
    sampler = WKMeansSampler(Fixed(), 2, beta=1, uncertainty="mean_binary", prefit=True)
    picked, scores = sampler.fit().select_with_scores(POOL)
    assert picked.tolist() == [2, 0]
    np.testing.assert_allclose(scores, [0.6, 1.4 / 3])
    with pytest.raises(InputError, match=r"uncertainty 'margin' does not score a multi-label"):
        WKMeansSampler(Fixed(), 2, prefit=True).fit()


def test_single_label_strategies_refuse_a_multilabel_model_and_the_reverse():
    with pytest.raises(InputError, match=r"MarginSampler: the classifier \(Fixed\) is multi-label"):
        MarginSampler(Fixed(), 2, prefit=True).fit()
    single = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    with pytest.raises(InputError, match=r"MMCSampler: the classifier .* is single-label"):
        MMCSampler(single, 2, prefit=True).fit([[0.0], [1.0]], [[1, 0], [0, 1]])
    with pytest.raises(InputError, match="MMCSampler: fit needs the labeled rows"):
        MMCSampler(Fixed(), 2, prefit=True).fit()


def test_the_registry_names_the_field_when_a_strategy_does_not_fit_the_model():
    with pytest.raises(InputError, match=r"^strategy: 'entropy' ranks single-label models"):
        check_strategy_kind("entropy", multilabel=True)
    with pytest.raises(InputError, match=r"^strategy: 'mmc' ranks multi-label models, .*margin"):
        check_strategy_kind("mmc", multilabel=False)
    for name in ("kcenter", "wkmeans", "badge", "random", "typiclust"):
        check_strategy_kind(name, multilabel=True)
        check_strategy_kind(name, multilabel=False)
    for name in sorted(MULTI_LABEL_STRATEGIES):
        sampler = make_sampler(name, classifier=Fixed(), batch_size=2, random_state=0)
        sampler.fit(LABELED, Y_LABELED)
        assert sampler.select_samples(POOL).shape == (2,)
    params = multilabel_params("badge", {}, (0.4, 0.5, 0.6))
    assert make_sampler("badge", classifier=Fixed(), **params).thresholds == [0.4, 0.5, 0.6]


@pytest.mark.parametrize(
    "sampler_class",
    [
        MeanBinaryUncertaintySampler,
        MaxBinaryUncertaintySampler,
        MMCSampler,
        LabelCardinalitySampler,
    ],
)
def test_a_multilabel_rows_score_does_not_depend_on_the_rows_scored_with_it(sampler_class):
    """As for the single-label samplers: the binary probabilities are snapped to a grid, so
    equal rows score equally whatever the chunking, and the queue does not follow where
    chunks start."""
    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(5, 3))
    pool = pd.DataFrame(distinct[rng.integers(0, 5, 600)], columns=["a", "b", "c"])
    labeled = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    Y = (labeled.to_numpy() + 0.5 * rng.normal(size=(60, 3)) > 0).astype(int)
    model = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression()))
    sampler = sampler_class(model, batch_size=30).fit(labeled, Y)
    whole = sampler.score_samples(pool)
    for size in (1, 7, 64):
        chunked = np.concatenate([sampler.score_samples(c) for c in iter_chunks(pool, size)])
        np.testing.assert_array_equal(chunked, whole)
    picked = sampler.select_samples(iter_chunks(pool, 7))
    np.testing.assert_array_equal(picked, sampler.select_samples(pool))


def test_a_text_pool_goes_to_a_multilabel_text_pipeline():
    texts = ["red apple", "green apple", "red car", "blue car", "green tree", "blue sky"] * 3
    Y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]] * 3)
    model = make_pipeline(TfidfVectorizer(), OneVsRestClassifier(LogisticRegression()))
    pool = ["red sky", "apple", "blue apple", "car"]
    for name in sorted(MULTI_LABEL_STRATEGIES):
        sampler = make_sampler(name, classifier=model, batch_size=2, prefit=False)
        as_list = sampler.fit(texts, Y).select_samples(pool)
        assert len(set(as_list.tolist())) == 2
        np.testing.assert_array_equal(sampler.select_samples(pd.Series(pool)), as_list)
