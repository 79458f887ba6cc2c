"""Each strategy against its definition: reference implementations and constructed cases."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from active_labeling.errors import InputError, NotFittedError
from active_labeling.samplers import (
    BADGESampler,
    CommitteeSampler,
    IWKMeansSampler,
    KCenterGreedySampler,
    KMeansSampler,
    MarginSampler,
    TypiClustSampler,
    WKMeansSampler,
)
from active_labeling.samplers.badge import gradient_embedding_factors, kmeans_pp_on_products
from active_labeling.samplers.committee import mean_kl_divergence, vote_entropy
from active_labeling.samplers.typiclust import typicality


class SigmoidOfFirstFeature:
    """A fixed binary model: P(class 1) = sigmoid(4 x0). Rows near x0 = 0 are uncertain."""

    classes_ = np.array([0, 1])

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        p = 1.0 / (1.0 + np.exp(-4.0 * np.asarray(X)[:, 0]))
        return np.column_stack([1 - p, p])


# --- k-center greedy ------------------------------------------------------------------


def k_center_reference(X, labeled, b):
    """Algorithm 1 of Sener and Savarese 2018, with a full distance matrix."""
    D = np.linalg.norm(X[:, None, :] - X[None, :, :], axis=2)
    DL = np.linalg.norm(X[:, None, :] - labeled[None, :, :], axis=2).min(axis=1)
    chosen = []
    for _ in range(b):
        nearest = DL.copy()
        for c in chosen:
            nearest = np.minimum(nearest, D[:, c])
        nearest[chosen] = -1
        chosen.append(int(np.argmax(nearest)))
    return chosen


def test_k_center_matches_the_reference_algorithm():
    rng = np.random.default_rng(0)
    X, labeled = rng.normal(size=(300, 4)), rng.normal(size=(12, 4))
    picked = KCenterGreedySampler(batch_size=25).fit(labeled).select_samples(X)
    assert picked.tolist() == k_center_reference(X, labeled, 25)


def test_k_center_never_picks_near_labeled_points_first():
    labeled = np.array([[0.0, 0.0], [10.0, 0.0]])
    pool = np.array([[0.1, 0.0], [9.9, 0.0], [5.0, 0.0], [0.0, 8.0]])
    picked = KCenterGreedySampler(batch_size=2).fit(labeled).select_samples(pool)
    assert picked.tolist() == [3, 2]


def test_k_center_with_nothing_labeled_starts_at_a_seeded_random_row():
    pool = np.random.default_rng(0).normal(size=(100, 3))
    first = [
        KCenterGreedySampler(3, random_state=s).fit().select_samples(pool)[0] for s in range(8)
    ]
    assert len(set(first)) > 1  # the start depends on the seed
    again = [
        KCenterGreedySampler(3, random_state=s).fit().select_samples(pool)[0] for s in range(8)
    ]
    assert first == again


def test_k_center_picks_distinct_rows_even_among_duplicates():
    pool = np.zeros((10, 2))
    picked = KCenterGreedySampler(batch_size=4).fit(np.zeros((1, 2))).select_samples(pool)
    assert len(set(picked.tolist())) == 4


def test_k_center_memory_is_linear_in_the_pool():
    rng = np.random.default_rng(0)
    pool, labeled = rng.normal(size=(20_000, 10)), rng.normal(size=(300, 10))
    sampler = KCenterGreedySampler(batch_size=20).fit(labeled)
    tracemalloc.start()
    sampler.select_samples(pool)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n_by_n = 20_000**2 * 8  # 3.2 GB
    assert peak < 60 * 1024**2 < n_by_n


def test_k_center_refuses_mismatched_feature_counts():
    sampler = KCenterGreedySampler(2).fit(np.zeros((3, 4)))
    with pytest.raises(InputError, match="4"):
        sampler.select_samples(np.zeros((10, 5)))


# --- k-means family -------------------------------------------------------------------


def test_kmeans_sampler_takes_one_row_per_blob():
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0], [20, 0], [0, 20], [20, 20]])
    X = np.vstack([c + rng.normal(scale=0.5, size=(30, 2)) for c in centers])
    picked = KMeansSampler(batch_size=4, random_state=0).select_samples(X)
    assert sorted(picked // 30) == [0, 1, 2, 3]


def test_wkmeans_with_beta_one_is_the_uncertainty_top():
    rng = np.random.default_rng(0)
    X_lab = rng.normal(size=(40, 3))
    y_lab = (X_lab[:, 0] > 0).astype(int)
    pool = rng.normal(size=(500, 3))
    margin_top = MarginSampler(LogisticRegression(), 10).fit(X_lab, y_lab).select_samples(pool)
    wkm = WKMeansSampler(LogisticRegression(), 10, beta=1, random_state=0).fit(X_lab, y_lab)
    assert set(wkm.select_samples(pool).tolist()) == set(margin_top.tolist())


def test_wkmeans_picks_among_the_most_uncertain_and_spreads_out():
    rng = np.random.default_rng(0)
    pool = np.column_stack([rng.normal(scale=2.0, size=2000), rng.uniform(-10, 10, 2000)])
    sampler = WKMeansSampler(SigmoidOfFirstFeature(), 8, beta=10, prefit=True, random_state=0)
    picked = sampler.fit().select_samples(pool)
    scores = sampler.score_samples(pool)
    assert scores[picked].min() >= np.sort(scores)[-80]  # all within the top beta * b
    # Diverse: the picks spread along the uncertain boundary, not in one spot.
    assert np.ptp(pool[picked, 1]) > 10


def _honey_pot():
    """Uncertain rows in two places; one of them already holds many labeled points."""
    rng = np.random.default_rng(0)
    pot = np.array([0.0, 10.0]) + rng.normal(scale=0.3, size=(20, 2))
    fresh = np.array([0.0, -10.0]) + rng.normal(scale=0.3, size=(20, 2))
    certain = np.column_stack([rng.choice([-6.0, 6.0], 200), rng.uniform(-10, 10, 200)])
    pool = np.vstack([pot, fresh, certain])
    labeled = np.array([0.0, 10.0]) + rng.normal(scale=0.3, size=(300, 2))  # well explored
    return pool, labeled


def test_incremental_wkmeans_avoids_the_explored_region():
    pool, labeled = _honey_pot()
    common = dict(batch_size=4, beta=10, prefit=True, random_state=0)
    wkm = WKMeansSampler(SigmoidOfFirstFeature(), **common).fit()
    iwkm = IWKMeansSampler(SigmoidOfFirstFeature(), **common).fit(labeled)
    in_pot = lambda picked: int((picked < 20).sum())  # noqa: E731
    assert in_pot(wkm.select_samples(pool)) >= 1  # plain WKMeans goes back to the pot
    assert in_pot(iwkm.select_samples(pool)) == 0  # the incremental one does not


def test_incremental_wkmeans_without_labeled_points_is_a_weighted_kmeans():
    pool, _ = _honey_pot()
    sampler = IWKMeansSampler(SigmoidOfFirstFeature(), 4, prefit=True, random_state=0).fit()
    picked = sampler.select_samples(pool)
    assert len(set(picked.tolist())) == 4 and (picked < 40).all()


def test_unknown_uncertainty_name_is_refused():
    sampler = WKMeansSampler(SigmoidOfFirstFeature(), 2, uncertainty="bogus", prefit=True)
    with pytest.raises(InputError, match="bogus"):
        sampler.fit()


# --- committee ------------------------------------------------------------------------


def test_vote_entropy_by_hand():
    # 3 members, 3 classes. Row 0: votes 0,1,2 -> uniform -> 1. Row 1: 0,0,1 -> H(2/3, 1/3).
    P = np.zeros((3, 2, 3))
    P[0, 0, 0] = P[1, 0, 1] = P[2, 0, 2] = 1
    P[0, 1, 0] = P[1, 1, 0] = P[2, 1, 1] = 1
    h = -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3)) / np.log(3)
    np.testing.assert_allclose(vote_entropy(P), [1.0, h])


def test_mean_kl_divergence_by_hand_and_bound():
    P = np.array([[[0.8, 0.2]], [[0.4, 0.6]]])
    mean = np.array([0.6, 0.4])
    kl = [(p * np.log(p / mean)).sum() for p in ([0.8, 0.2], [0.4, 0.6])]
    np.testing.assert_allclose(mean_kl_divergence(P), [np.mean(kl) / np.log(2)])
    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.full(5, 0.1), size=(4, 1000))
    values = mean_kl_divergence(random)
    assert values.min() >= 0 and values.max() <= 1


def test_committee_aligns_members_that_know_different_classes():
    class Fixed:
        def __init__(self, classes, proba):
            self.classes_ = np.array(classes)
            self.proba = np.array(proba)

        def predict_proba(self, X):
            return np.tile(self.proba, (len(X), 1))

    members = [Fixed(["a", "b"], [0.9, 0.1]), Fixed(["b", "c"], [0.2, 0.8])]
    sampler = CommitteeSampler(members, 1, prefit=True).fit()
    assert sampler.classes_.tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(
        sampler.member_proba(np.zeros((1, 1)))[:, 0], [[0.9, 0.1, 0], [0, 0.2, 0.8]]
    )


def test_committee_bagging_is_seeded_and_members_differ():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, 3, 80)
    from sklearn.tree import DecisionTreeClassifier

    sampler = CommitteeSampler(DecisionTreeClassifier(), 5, n_members=4, random_state=1).fit(X, y)
    pool = rng.normal(size=(50, 3))
    preds = [m.predict(pool) for m in sampler.members_]
    assert any((preds[0] != p).any() for p in preds[1:])
    assert all(set(m.classes_) == {0, 1, 2} for m in sampler.members_)


def test_single_prefit_classifier_is_not_a_committee():
    with pytest.raises(InputError, match="list"):
        CommitteeSampler(SigmoidOfFirstFeature(), 2, prefit=True).fit()


def test_unknown_committee_method_is_refused():
    with pytest.raises(InputError, match="method"):
        CommitteeSampler([SigmoidOfFirstFeature()], 2, method="x", prefit=True).fit()


# --- BADGE ----------------------------------------------------------------------------


def kmeans_pp_reference(G, n_select, rng):
    """k-means++ seeding on explicit embeddings, first pick the largest norm."""
    chosen = [int(np.argmax((G**2).sum(axis=1)))]
    d2 = ((G - G[chosen[0]]) ** 2).sum(axis=1)
    for _ in range(n_select - 1):
        d2[chosen] = 0
        i = int(rng.choice(len(G), p=d2 / d2.sum()))
        chosen.append(i)
        d2 = np.minimum(d2, ((G - G[i]) ** 2).sum(axis=1))
    return chosen


def test_badge_seeding_equals_seeding_on_explicit_gradient_embeddings():
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(4), size=200)
    H = rng.normal(size=(200, 6))
    A, H = gradient_embedding_factors(proba, H)
    G = (A[:, :, None] * H[:, None, :]).reshape(200, -1)  # the embedding BADGE defines
    ours = kmeans_pp_on_products(A, H, 15, np.random.default_rng(7))
    assert ours.tolist() == kmeans_pp_reference(G, 15, np.random.default_rng(7))


def test_badge_gradient_is_the_cross_entropy_gradient_at_the_predicted_label():
    proba = np.array([[0.1, 0.7, 0.2]])
    A, _ = gradient_embedding_factors(proba, np.ones((1, 2)))
    np.testing.assert_allclose(A, [[0.1, -0.3, 0.2]])


def test_badge_uses_the_last_hidden_layer_of_an_mlp_in_a_pipeline():
    from active_labeling.samplers.badge import last_layer_input

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(7, 3), max_iter=50, random_state=0)
    )
    with pytest.warns(Warning):  # 50 iterations do not converge; irrelevant here
        model.fit(X, y)
    H = last_layer_input(model, X)
    assert H.shape == (100, 3)
    mlp = model[-1]
    logits = H @ mlp.coefs_[-1] + mlp.intercepts_[-1]
    p1 = 1 / (1 + np.exp(-logits[:, 0]))
    np.testing.assert_allclose(p1, model.predict_proba(X)[:, 1], rtol=1e-6)
    picked = BADGESampler(model, 5, prefit=True, random_state=0).fit().select_samples(X)
    assert len(set(picked.tolist())) == 5


def test_badge_on_a_fully_confident_model_still_returns_distinct_rows():
    class Certain:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            return np.column_stack([np.ones(len(X)), np.zeros(len(X))])

    picked = (
        BADGESampler(Certain(), 6, prefit=True, random_state=0)
        .fit()
        .select_samples(np.random.default_rng(0).normal(size=(30, 2)))
    )
    assert len(set(picked.tolist())) == 6


# --- TypiClust ------------------------------------------------------------------------


def test_typicality_by_hand():
    X = np.array([[0.0], [1.0], [3.0]])
    # 1 neighbour: distances 1, 1, 2 -> 1 / (d + 1e-5)
    np.testing.assert_allclose(typicality(X, 1), 1 / (np.array([1.0, 1.0, 2.0]) + 1e-5))


def test_typiclust_picks_the_dense_core_not_the_outskirts():
    rng = np.random.default_rng(0)
    blob = rng.normal(size=(200, 2))
    picked = TypiClustSampler(batch_size=1, random_state=0).fit().select_samples(blob)
    distance_to_center = np.linalg.norm(blob - blob.mean(axis=0), axis=1)
    assert distance_to_center[picked[0]] < np.quantile(distance_to_center, 0.2)


def test_typiclust_goes_to_uncovered_clusters_first():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(100, 2))
    b = np.array([30.0, 0.0]) + rng.normal(size=(60, 2))
    pool = np.vstack([a, b])
    labeled = rng.normal(size=(1, 2))  # covers blob a
    picked = TypiClustSampler(batch_size=1, random_state=0).fit(labeled).select_samples(pool)
    assert picked[0] >= 100  # from the smaller but uncovered blob b


def test_typiclust_needs_fit():
    with pytest.raises(NotFittedError):
        TypiClustSampler(2).select_samples(np.zeros((5, 2)))
