"""The noisy-blob generator of Table 1 and the oracle-informed confidence sampler."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from active_labeling.errors import InputError, NotFittedError
from active_labeling.experiment.oracle import (
    ORACLE_STRATEGIES,
    InformedConfidenceSampler,
    fit_oracle,
    informed_confidence,
    true_label_proba,
)
from active_labeling.experiment.synthetic import (
    GENERATORS,
    NOISY_BLOBS,
    make_noisy_blobs,
    noisy_blobs_spec,
)
from active_labeling.samplers.registry import STRATEGIES
from active_labeling.samplers.uncertainty import LeastConfidenceSampler

#: A small task whose Gaussians lie far apart, so that each one can be found back.
SMALL = dict(n_samples=480, n_blobs=12, n_noisy_blobs=6, n_classes=4, center_box=(-500, 500))


def gaussians(X: np.ndarray) -> np.ndarray:
    """Which Gaussian each point came from, found back by single linkage (far-apart blobs)."""
    return fcluster(linkage(X, method="single"), t=30.0, criterion="distance")


# ---------------------------------------------------------------------------------------
# Generator


@pytest.mark.parametrize(
    ("kind", "shape", "noisy_share"), [("LD", (10_000, 2), 0.5), ("HD", (9_990, 40), 1 / 3)]
)
def test_published_tasks_have_their_shape_balance_and_noisy_share(kind, shape, noisy_share):
    X, y, noisy = make_noisy_blobs(kind, random_state=1)
    assert X.shape == shape
    assert y.shape == noisy.shape == (shape[0],)
    assert noisy.dtype == bool
    counts = np.bincount(y)
    assert counts.shape == (10,) and (counts == shape[0] // 10).all()
    assert noisy.mean() == pytest.approx(noisy_share)


@pytest.mark.parametrize("kind", ["LD", "HD"])
def test_centres_lie_in_the_published_box(kind):
    X, _, _ = make_noisy_blobs(kind, random_state=2)
    low, high = NOISY_BLOBS[kind].center_box
    # Points stray from their centre by a few standard deviations at most.
    assert X.min() > low - 6 and X.max() < high + 6
    assert X.min() < low + 0.2 * (high - low) and X.max() > high - 0.2 * (high - low)


def test_same_seed_same_data_other_seed_other_data():
    first = make_noisy_blobs("LD", random_state=7, **SMALL)
    again = make_noisy_blobs("LD", random_state=7, **SMALL)
    other = make_noisy_blobs("LD", random_state=8, **SMALL)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    generator = np.random.default_rng(3)
    assert make_noisy_blobs("LD", random_state=generator, **SMALL)[0].shape == (480, 2)


def test_two_noisy_blobs_share_one_gaussian_split_half_and_half():
    X, y, noisy = make_noisy_blobs("LD", random_state=0, **SMALL)
    per_blob = 480 // 12
    found = gaussians(X)
    ids = np.unique(found)
    # 6 clean blobs + 3 shared Gaussians.
    assert ids.shape == (9,)
    split_between_two_classes = 0
    for g in ids:
        members = found == g
        assert noisy[members].all() or not noisy[members].any()
        classes, counts = np.unique(y[members], return_counts=True)
        if noisy[members].any():
            assert members.sum() == 2 * per_blob
            # Two blob labels, half of the points each; they may fall in one class.
            assert sorted(counts.tolist()) in ([per_blob, per_blob], [2 * per_blob])
            split_between_two_classes += classes.shape[0] == 2
        else:
            assert members.sum() == per_blob
            assert classes.shape == (1,)
    assert noisy.sum() == 3 * 2 * per_blob
    assert split_between_two_classes >= 1


def test_blob_ids_pair_the_noisy_blobs_and_map_to_one_class_each():
    X, y, noisy, blobs = make_noisy_blobs("LD", random_state=0, return_blobs=True, **SMALL)
    np.testing.assert_array_equal(make_noisy_blobs("LD", random_state=0, **SMALL)[0], X)
    assert np.bincount(blobs).tolist() == [40] * 12
    for b in range(12):
        assert np.unique(y[blobs == b]).shape == (1,)
    # Pairs (0, 9), (1, 10), (2, 11) share a Gaussian: their points are the noisy ones.
    np.testing.assert_array_equal(noisy, np.isin(blobs, [0, 1, 2, 9, 10, 11]))
    found = gaussians(X)
    for j in range(3):
        assert np.unique(found[np.isin(blobs, [j, 9 + j])]).shape == (1,)
    # Every class holds 12 / 4 = 3 blobs.
    per_class = [np.unique(blobs[y == c]).shape[0] for c in range(4)]
    assert per_class == [3, 3, 3, 3]


def test_blobs_are_dealt_to_classes_evenly():
    _X, y, _noisy = make_noisy_blobs("LD", random_state=4, **SMALL)
    # Each class holds 3 blobs of 40 points, whatever mix of clean and noisy.
    assert np.bincount(y).tolist() == [120] * 4


@pytest.mark.parametrize("std", [0.5, 3.0])
def test_cluster_std_is_the_spread_of_each_gaussian(std):
    X, _, _ = make_noisy_blobs("LD", random_state=5, cluster_std=std, **SMALL)
    found = gaussians(X)
    spreads = [X[found == g].std(axis=0, ddof=1).mean() for g in np.unique(found)]
    assert np.mean(spreads) == pytest.approx(std, rel=0.15)


def test_generators_are_named_for_experiment_configs():
    X_ld, _, _ = GENERATORS["noisy_blobs_ld"](random_state=0)
    X_hd, _, _ = GENERATORS["noisy_blobs_hd"](random_state=0, n_samples=900)
    assert X_ld.shape == (10_000, 2)
    assert X_hd.shape == (900, 40)
    np.testing.assert_array_equal(X_ld, make_noisy_blobs("LD", random_state=0)[0])


@pytest.mark.parametrize(
    ("kind", "overrides", "field"),
    [
        ("XD", {}, "kind"),
        ("LD", {"n_centres": 3}, "n_centres"),
        ("LD", {"n_noisy_blobs": 3}, "n_noisy_blobs"),
        ("LD", {"n_noisy_blobs": 202}, "n_noisy_blobs"),
        ("LD", {"n_blobs": 205}, "n_blobs"),
        ("LD", {"n_classes": 1}, "n_classes"),
        ("LD", {"n_samples": 200}, "n_samples"),
        ("LD", {"cluster_std": 0}, "cluster_std"),
        ("LD", {"center_box": (5, 5)}, "center_box"),
        ("LD", {"center_box": 5}, "center_box"),
        ("HD", {"n_features": 0}, "n_features"),
    ],
)
def test_bad_parameters_raise_an_error_naming_them(kind, overrides, field):
    with pytest.raises(InputError, match=field):
        make_noisy_blobs(kind, random_state=0, **overrides)


def test_spec_reports_blob_sizes():
    spec = noisy_blobs_spec("LD", **SMALL)
    assert (spec.samples_per_blob, spec.n_gaussians) == (40, 9)


# ---------------------------------------------------------------------------------------
# Oracle-informed confidence


def test_true_label_proba_reads_the_true_column_and_zero_for_unseen_labels():
    model = LogisticRegression().fit([[0.0], [1.0], [4.0], [5.0]], [3, 3, 7, 7])
    proba = model.predict_proba([[0.5], [4.5], [2.5]])
    got = true_label_proba(model, [[0.5], [4.5], [2.5]], [3, 7, 5])
    np.testing.assert_allclose(got, [proba[0, 0], proba[1, 1], 0.0])
    with pytest.raises(InputError, match="one label per row"):
        true_label_proba(model, [[0.5], [4.5]], [3])


def test_informed_confidence_is_least_confidence_capped_by_the_oracle():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=50)
    p_true = rng.uniform(size=50)
    got = informed_confidence(proba, p_true)
    np.testing.assert_allclose(got, np.minimum(1 - proba.max(axis=1), p_true))
    assert (got < 1 - proba.max(axis=1)).any() and (got < p_true).any()
    with pytest.raises(InputError, match="one probability per row"):
        informed_confidence(proba, p_true[:-1])


@pytest.fixture(scope="module")
def noisy_task():
    """A tiny noisy-blob task: a pool, a few labels, and an oracle fitted on held-out rows."""
    X, y, noisy = make_noisy_blobs(
        "LD",
        random_state=0,
        n_samples=1200,
        n_blobs=12,
        n_noisy_blobs=6,
        n_classes=3,
        center_box=(-20, 20),
    )
    rng = np.random.default_rng(0)
    order = rng.permutation(X.shape[0])
    pool, test = order[:600], order[600:]
    labeled = pool[:30]
    unlabeled = pool[30:]
    model = RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0)
    model.fit(X[labeled], y[labeled])
    oracle = fit_oracle(model, X[test], y[test], random_state=0)
    return X, y, noisy, labeled, unlabeled, model, oracle


class LookupModel(ClassifierMixin, BaseEstimator):
    """A fitted stand-in whose probabilities are a table indexed by the first feature."""

    def __init__(self, table):
        self.table = table

    def fit(self, X=None, y=None):
        self.classes_ = np.array([0, 1, 2])
        return self

    def predict_proba(self, X):
        return np.asarray(self.table)[np.asarray(X)[:, 0].astype(int)]


def test_informed_confidence_skips_uncertain_rows_the_oracle_cannot_classify():
    # Rows 0-2: the model hesitates (0.8) but the oracle gives the true label only 0.3, as
    # in a shared Gaussian; rows 3-5: less uncertain (0.6), easy for the oracle (0.95).
    model = LookupModel([[0.2, 0.4, 0.4]] * 3 + [[0.4, 0.3, 0.3]] * 3).fit()
    oracle = LookupModel([[0.3, 0.4, 0.3]] * 3 + [[0.95, 0.05, 0.0]] * 3).fit()
    pool, y_pool = np.arange(6.0)[:, None], np.zeros(6, dtype=int)
    plain = LeastConfidenceSampler(model, 3, prefit=True).fit().select_samples(pool)
    sampler = InformedConfidenceSampler(model, 3, oracle=oracle, prefit=True).fit()
    informed, scores = sampler.select_with_scores(pool, y_pool)
    assert sorted(plain.tolist()) == [0, 1, 2]
    assert informed.tolist() == [3, 4, 5]
    np.testing.assert_allclose(scores, [0.6, 0.6, 0.6])
    np.testing.assert_allclose(sampler.score_samples(pool, y_pool), [0.3] * 3 + [0.6] * 3)


def test_informed_confidence_sampler_scores_a_forest_with_the_formula(noisy_task):
    X, y, _noisy, _labeled, unlabeled, model, oracle = noisy_task
    batch = 40
    sampler = InformedConfidenceSampler(model, batch, oracle=oracle, prefit=True).fit()
    informed, scores = sampler.select_with_scores(X[unlabeled], y[unlabeled])
    assert np.unique(informed).shape == (batch,)
    expected = informed_confidence(
        model.predict_proba(X[unlabeled]), true_label_proba(oracle, X[unlabeled], y[unlabeled])
    )
    np.testing.assert_allclose(scores, expected[informed])
    assert (np.diff(scores) <= 0).all()
    assert scores[-1] >= np.delete(expected, informed).max()
    # The oracle does cap some rows: the informed ranking is not least confidence's.
    assert (expected < 1 - model.predict_proba(X[unlabeled]).max(axis=1)).any()


def test_informed_confidence_sampler_is_deterministic_and_fits_its_classifier(noisy_task):
    X, y, _, labeled, unlabeled, _model, oracle = noisy_task
    a = InformedConfidenceSampler(RandomForestClassifier(random_state=1), 5, oracle=oracle)
    b = InformedConfidenceSampler(RandomForestClassifier(random_state=1), 5, oracle=oracle)
    pa = a.fit(X[labeled], y[labeled]).select_samples(X[unlabeled], y[unlabeled])
    pb = b.fit(X[labeled], y[labeled]).select_samples(X[unlabeled], y[unlabeled])
    np.testing.assert_array_equal(pa, pb)
    assert hasattr(a, "classifier_") and not hasattr(a.classifier, "classes_")


def test_informed_confidence_sampler_needs_a_fitted_oracle(noisy_task):
    X, y, _, _labeled, unlabeled, model, _ = noisy_task
    with pytest.raises(InputError, match="oracle"):
        InformedConfidenceSampler(model, 5, prefit=True).fit()
    with pytest.raises(NotFittedError, match="oracle"):
        InformedConfidenceSampler(model, 5, oracle=LogisticRegression(), prefit=True).fit()
    with pytest.raises(NotFittedError):
        InformedConfidenceSampler(model, 5, oracle=model).select_samples(X[unlabeled], y[:3])


def test_oracle_strategies_stay_out_of_the_live_registry():
    assert set(ORACLE_STRATEGIES) == {"informed_confidence"}
    assert not set(ORACLE_STRATEGIES) & set(STRATEGIES)
    assert all(cls.requires_true_labels for cls in ORACLE_STRATEGIES.values())
