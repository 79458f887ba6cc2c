"""The monitoring metrics against hand-computed cases, the tutorial's formulas and edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score, f1_score
from sklearn.neighbors import KNeighborsClassifier

from active_labeling.errors import InputError
from active_labeling.metrics import (
    batch_agreement,
    batch_easiness,
    class_balance,
    classic_policy,
    cohen_kappa,
    confidence_stop,
    contradiction_ratio,
    cross_validated_scores,
    current_labels,
    default_policy,
    exploration_distance,
    exploration_gain,
    fleiss_kappa,
    holdout_scores,
    labeler_agreement,
    labels_per_hour,
    mean_confidence,
    median_lead_time,
    nearest_distances,
    sample_for_contradictions,
    sample_uncertainty,
    stop_set_kappa,
    stopping_advice,
    uncertainty_variance,
    variance_stop,
)
from active_labeling.samplers.scores import margin

# ---------------------------------------------------------------- contradictions


def test_contradiction_ratio_by_hand():
    assert contradiction_ratio([0, 1, 2, 1, 0], [0, 2, 2, 1, 1]) == pytest.approx(2 / 5)


def test_contradiction_ratio_matches_tutorial_formula_on_two_models():
    # C(t) = 1/|S| sum 1[h_{t-1}(x) != h_t(x)] with two models trained on growing sets.
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    sample = sample_for_contradictions(len(X), 200, random_state=3)
    h_prev = LogisticRegression().fit(X[:20], y[:20]).predict(X[sample])
    h_curr = LogisticRegression().fit(X[:120], y[:120]).predict(X[sample])
    expected = sum(int(a != b) for a, b in zip(h_prev, h_curr, strict=True)) / len(sample)
    assert contradiction_ratio(h_prev, h_curr) == pytest.approx(expected)


def test_contradiction_ratio_extremes():
    labels = np.array(["a", "b", "c"])
    assert contradiction_ratio(labels, labels.copy()) == 0.0
    assert contradiction_ratio(labels, np.roll(labels, 1)) == 1.0


@pytest.mark.parametrize(
    ("previous", "current", "named"),
    [
        ([], [], "previous_pred is empty"),
        ([0, 1], [0, 1, 1], "previous_pred has 2 rows but current_pred has 3"),
        ([[0.2, 0.8]], [[0.3, 0.7]], "1-D"),
        (["1", "0"], [1, 0], "text"),
    ],
)
def test_contradiction_ratio_bad_input(previous, current, named):
    with pytest.raises(InputError, match=named):
        contradiction_ratio(previous, current)


def test_contradiction_sample_is_reproducible_uniform_and_capped():
    a = sample_for_contradictions(10_000, 500, random_state=7)
    b = sample_for_contradictions(10_000, 500, random_state=7)
    c = sample_for_contradictions(10_000, 500, random_state=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(np.unique(a)) == 500 and a.min() >= 0 and a.max() < 10_000
    assert (np.diff(a) > 0).all()
    np.testing.assert_array_equal(sample_for_contradictions(4, 9, random_state=0), [0, 1, 2, 3])
    # Uniform: each half of the pool gets about half of a large sample.
    big = sample_for_contradictions(100_000, 20_000, random_state=0)
    assert abs((big < 50_000).mean() - 0.5) < 0.02


@pytest.mark.parametrize(("n_pool", "size"), [(0, 5), (10, 0), (10.5, 3), (True, 3)])
def test_contradiction_sample_bad_sizes(n_pool, size):
    with pytest.raises(InputError, match="must be a positive int"):
        sample_for_contradictions(n_pool, size, random_state=0)


# ---------------------------------------------------------------- exploration


def test_exploration_distance_by_hand():
    # Distances 5 and 1 (euclidean), 7 and 1 (manhattan) to the labeled row at the origin.
    assert exploration_distance([[3, 4], [0, 1]], [[0, 0], [10, 10]]) == pytest.approx(3.0)
    assert exploration_distance([[3, 4], [0, 1]], [[0, 0]], metric="manhattan") == 4.0


def test_nearest_distances_blocked_equal_the_full_matrix():
    rng = np.random.default_rng(0)
    X_from, X_to = rng.normal(size=(3000, 4)), rng.normal(size=(700, 4))
    expected = cdist(X_from, X_to).min(axis=1)
    # 0.5 MB per block: several blocks of about 90 rows each.
    got = nearest_distances(X_from, X_to, working_memory=0.5)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert exploration_distance(X_from, X_to, working_memory=0.5) == pytest.approx(expected.mean())


def test_exploration_gain_is_the_tutorial_formula():
    # EG(t) = sum_{x in D_Te} d(x, L_{t-1}) - sum_{x in D_Te} d(x, L_t), L_t = L_{t-1} + B_t.
    rng = np.random.default_rng(2)
    reference = rng.normal(size=(300, 3))
    labeled, batch = rng.normal(size=(40, 3)), rng.normal(size=(10, 3)) + 1.0
    before = cdist(reference, labeled).min(axis=1).sum()
    after = cdist(reference, np.vstack([labeled, batch])).min(axis=1).sum()
    assert exploration_gain(reference, labeled, batch, average=False) == pytest.approx(
        before - after
    )
    assert exploration_gain(reference, labeled, batch) == pytest.approx((before - after) / 300)


def test_incremental_exploration_gain_as_in_the_docs():
    rng = np.random.default_rng(3)
    reference, labeled = rng.normal(size=(200, 2)), rng.normal(size=(30, 2))
    before = nearest_distances(reference, labeled)
    for _ in range(3):
        batch = rng.normal(size=(5, 2)) * 2
        after = np.minimum(before, nearest_distances(reference, batch))
        assert float((before - after).mean()) == pytest.approx(
            exploration_gain(reference, labeled, batch)
        )
        before, labeled = after, np.vstack([labeled, batch])


def test_exploration_gain_by_hand_and_zero_for_a_repeated_batch():
    assert exploration_gain([[0], [10]], [[0]], [[8]]) == pytest.approx(4.0)
    labeled = [[0.0, 0.0], [5.0, 5.0]]
    assert exploration_gain([[1.0, 1.0], [4.0, 4.0]], labeled, labeled) == 0.0


@pytest.mark.parametrize(
    ("X_new", "X_labeled", "named"),
    [
        (np.empty((0, 2)), [[0.0, 0.0]], "X_new is empty"),
        ([[0.0, 0.0]], np.empty((0, 2)), "X_labeled is empty"),
        ([[0.0, 0.0]], [[0.0, 0.0, 0.0]], "X_new has 2 feature columns but X_labeled has 3"),
        ([[0.0, np.nan]], [[0.0, 0.0]], "X_new has a non-finite value .* row 0, column 1"),
        ([0.0, 1.0], [[0.0, 0.0]], "X_new must be 2-D"),
    ],
)
def test_exploration_bad_input(X_new, X_labeled, named):
    with pytest.raises(InputError, match=named):
        exploration_distance(X_new, X_labeled)


def test_exploration_unknown_metric_and_empty_earlier_set():
    with pytest.raises(InputError, match="metric='nope'"):
        exploration_distance([[0.0]], [[1.0]], metric="nope")
    with pytest.raises(InputError, match="X_labeled is empty"):
        exploration_gain([[0.0]], np.empty((0, 1)), [[1.0]])


# ---------------------------------------------------------------- batch hardness


def test_batch_agreement_by_hand():
    X_lab, y_lab = [[0.0], [10.0]], ["a", "b"]
    X_new = [[1.0], [2.0], [8.0], [9.0]]  # 1-NN: a, a, b, b
    # p_o = 3/4; p_e = 1/4 * 1/2 + 3/4 * 1/2 = 1/2; kappa = 1/2.
    assert batch_agreement(["a", "b", "b", "b"], X_new, X_lab, y_lab) == pytest.approx(0.5)
    raw = batch_agreement(["a", "b", "b", "b"], X_new, X_lab, y_lab, chance_corrected=False)
    assert raw == pytest.approx(0.75)


def test_batch_agreement_is_cohen_kappa_against_a_fitted_1nn():
    rng = np.random.default_rng(4)
    X_lab, X_new = rng.normal(size=(60, 2)), rng.normal(size=(40, 2))
    y_lab = np.where(X_lab[:, 0] > 0, "pos", "neg")
    model_pred = np.where(X_new[:, 0] + 0.3 * X_new[:, 1] > 0, "pos", "neg")
    nn = KNeighborsClassifier(n_neighbors=1).fit(X_lab, y_lab).predict(X_new)
    expected = cohen_kappa_score(model_pred, nn)
    assert batch_agreement(model_pred, X_new, X_lab, y_lab) == pytest.approx(expected)


def test_batch_agreement_identical_and_one_class():
    X_lab, y_lab = [[0.0], [10.0]], [0, 1]
    assert batch_agreement([0, 1], [[1.0], [9.0]], X_lab, y_lab) == 1.0
    # Both say one and the same class: kappa is 0/0.
    assert np.isnan(batch_agreement([0, 0], [[1.0], [2.0]], X_lab, y_lab))


@pytest.mark.parametrize(
    ("pred", "X_new", "named"),
    [
        ([], np.empty((0, 1)), "model_pred_new is empty"),
        ([0, 1], [[1.0]], "model_pred_new has 2 rows but X_new has 1"),
    ],
)
def test_batch_agreement_bad_input(pred, X_new, named):
    with pytest.raises(InputError, match=named):
        batch_agreement(pred, X_new, [[0.0], [1.0]], [0, 1])


def test_batch_easiness_by_hand_and_edges():
    assert batch_easiness([1, 0, 1, 1, 0], [1, 1, 1, 0, 0]) == pytest.approx(3 / 5)
    assert batch_easiness(["a"], ["a"]) == 1.0
    with pytest.raises(InputError, match="previous_pred_new is empty"):
        batch_easiness([], [])
    with pytest.raises(InputError, match="y_new"):
        batch_easiness([1, 0], [1])


# ---------------------------------------------------------------- kappa


def test_cohen_kappa_matches_scikit_learn():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    b[:120] = a[:120]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert np.isnan(cohen_kappa(["x", "x"], ["x", "x"]))


def test_fleiss_kappa_wikipedia_worked_example():
    # https://en.wikipedia.org/wiki/Fleiss%27_kappa#Worked_example: 10 items, 14 raters,
    # 5 categories; P_bar = 0.378, P_e = 0.213, kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_edges():
    assert fleiss_kappa([[2, 0], [0, 2]]) == pytest.approx(1.0)
    assert np.isnan(fleiss_kappa([[3, 0], [2, 0]]))
    with pytest.raises(InputError, match="row 1 has 1 rating"):
        fleiss_kappa([[2, 0], [1, 0]])
    with pytest.raises(InputError, match="whole numbers"):
        fleiss_kappa([[1.5, 0.5]])


# ---------------------------------------------------------------- scores


def test_holdout_scores_by_hand_and_against_scikit_learn():
    # Class a: P = 1, R = 1/2, F1 = 2/3; class b: P = 2/3, R = 1, F1 = 4/5.
    scores = holdout_scores(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert scores["accuracy"] == 0.75
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert scores["optimistic"] is False
    rng = np.random.default_rng(6)
    y, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    assert holdout_scores(y, p)["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))


def test_holdout_scores_bad_input():
    with pytest.raises(InputError, match="y_true is empty"):
        holdout_scores([], [])
    with pytest.raises(InputError, match="y_true has 2 rows but y_pred has 1"):
        holdout_scores([0, 1], [0])


def _blobs(n_per_class=(20, 20), seed=0):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(loc=4 * i, size=(n, 2)) for i, n in enumerate(n_per_class)])
    y = np.repeat([f"c{i}" for i in range(len(n_per_class))], n_per_class)
    return X, y


def test_cross_validated_scores_are_optimistic_reproducible_and_leave_the_model_alone():
    X, y = _blobs()
    model = LogisticRegression()
    a = cross_validated_scores(model, X, y, cv=5, random_state=0)
    b = cross_validated_scores(model, X, y, cv=5, random_state=0)
    assert a == b
    assert a["optimistic"] is True and a["n_splits"] == 5 and a["note"] == ""
    assert a["accuracy"] > 0.9
    assert not hasattr(model, "coef_")


def test_cross_validated_scores_with_tiny_classes():
    X, y = _blobs((20, 20, 3))
    scores = cross_validated_scores(LogisticRegression(), X, y, cv=5, random_state=0)
    assert scores["n_splits"] == 3 and "3 folds instead of 5" in scores["note"]
    X, y = _blobs((20, 20, 1))
    scores = cross_validated_scores(LogisticRegression(), X, y, cv=5, random_state=0)
    assert scores["n_splits"] == 5 and "single label" in scores["note"] and "'c2'" in scores["note"]


def test_cross_validated_scores_bad_input():
    X, y = _blobs()
    with pytest.raises(InputError, match="single class"):
        cross_validated_scores(LogisticRegression(), X, np.zeros(len(X)), random_state=0)
    with pytest.raises(InputError, match="cv must be at least 2"):
        cross_validated_scores(LogisticRegression(), X, y, cv=1)
    with pytest.raises(InputError, match="X has 40 rows but y has 39"):
        cross_validated_scores(LogisticRegression(), X, y[:-1])


# ---------------------------------------------------------------- stopping rules


def test_uncertainty_variance_by_hand():
    batches = [[0.2, 0.4], [0.1, 0.3]]
    assert uncertainty_variance(batches) == pytest.approx(0.01)
    assert uncertainty_variance(batches, window=2) == pytest.approx(np.var([0.2, 0.4, 0.1, 0.3]))
    assert uncertainty_variance(batches, window=10) == uncertainty_variance(batches, window=2)
    # A series of per-batch numbers: the variance of the last `window` of them.
    assert uncertainty_variance([0.5, 0.1, 0.3], window=2) == pytest.approx(0.01)


def test_uncertainty_variance_bad_input():
    with pytest.raises(InputError, match="uncertainties_per_batch is empty"):
        uncertainty_variance([])
    with pytest.raises(InputError, match="are empty"):
        uncertainty_variance([[0.1], []])
    with pytest.raises(InputError, match="entry 1 has a non-finite score"):
        uncertainty_variance([[0.1], [np.nan]])
    with pytest.raises(InputError, match="window must be a positive int"):
        uncertainty_variance([[0.1]], window=0)


def test_variance_stop_needs_consecutive_drops():
    assert variance_stop([0.01, 0.05, 0.04, 0.03], window=2)
    assert not variance_stop([0.01, 0.05, 0.04, 0.045], window=2)
    assert not variance_stop([0.05, 0.04], window=2)  # too short
    assert variance_stop([0.05, 0.04, np.nan, 0.03], window=2)  # NaN skipped
    assert not variance_stop([0.05, 0.04, 0.03], window=2, threshold=0.02)  # EVM: drops too small


def test_confidence_rule_peak_then_drops():
    proba = [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]
    assert mean_confidence(proba) == pytest.approx((0.9 + 0.6 + 0.8) / 3)
    assert confidence_stop([0.6, 0.8, 0.9, 0.88, 0.87, 0.85])
    assert not confidence_stop([0.6, 0.8, 0.9, 0.88, 0.87])  # two drops only
    assert not confidence_stop([0.6, 0.8, 0.9, 0.88, 0.89, 0.85])
    assert not confidence_stop([0.9, 0.895, 0.89, 0.885], tolerance=0.01)
    with pytest.raises(InputError, match="proba row 0 sums"):
        mean_confidence([[0.5, 0.6]])


def _history(**columns):
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"n_labels": 50 * np.arange(1, n + 1), **columns})


NAN = float("nan")


def classic(history, **params):
    """The classic advice (contradictions and holdout plateau), with its parameters."""
    return (
        stopping_advice(history, **params)
        if params
        else stopping_advice(history, policy=classic_policy())
    )


def test_advice_stops_when_contradictions_stall_near_zero():
    advice, reasons = classic(_history(contradiction_ratio=[NAN, 0.2, 0.008, 0.006, 0.004]))
    assert advice == "stop"
    assert "0.8%, 0.6%, 0.4%" in reasons[0]


def test_advice_continues_while_the_model_still_changes():
    advice, reasons = classic(_history(contradiction_ratio=[NAN, 0.3, 0.2, 0.12, 0.08]))
    assert advice == "continue"
    assert "still at" in reasons[0]


def test_advice_checks_a_stuck_strategy():
    advice, reasons = classic(_history(contradiction_ratio=[0.3, 0.101, 0.1, 0.102]))
    assert advice == "check"
    assert "stuck" in reasons[0]
    # Still falling steadily towards zero: not stuck, just not there yet.
    advice, reasons = classic(_history(contradiction_ratio=[0.3, 0.037, 0.036, 0.029]))
    assert advice == "continue"
    assert (
        classic(_history(contradiction_ratio=[0.3, 0.037, 0.036, 0.029]), stuck_min_drop=0.3)[0]
        == "check"
    )


def test_advice_with_k_1_does_not_call_one_value_stuck():
    advice, reasons = classic(_history(contradiction_ratio=[NAN, 0.02]), k=1)
    assert advice == "continue" and "still at 2.0%" in reasons[0]


def test_advice_holdout_accuracy_still_rising_overrides_low_contradictions():
    history = _history(
        contradiction_ratio=[NAN, 0.05, 0.009, 0.008, 0.007],
        holdout_accuracy=[0.70, 0.80, 0.84, 0.87, 0.90],
    )
    advice, reasons = classic(history)
    assert advice == "check"
    assert any("holdout accuracy still improves" in r for r in reasons)
    history["holdout_accuracy"] = [0.70, 0.88, 0.881, 0.882, 0.881]
    assert classic(history)[0] == "stop"


def test_advice_heuristics_alone_never_stop():
    history = _history(
        uncertainty_variance=[0.02, 0.05, 0.04, 0.03],
        mean_confidence=[0.7, 0.9, 0.89, 0.88],
    )
    advice, reasons = classic(history)
    assert advice == "check"
    assert any("Ghayoomi" in r and "fell" in r for r in reasons)
    assert any("Vlachos" in r and "dropped" in r for r in reasons)


def test_advice_quorum_of_the_stop_rules():
    history = _history(
        contradiction_ratio=[NAN, 0.2, 0.005, 0.004, 0.003],
        holdout_accuracy=[0.5, 0.6, 0.7, 0.8, 0.9],
        uncertainty_variance=[0.02, 0.03, 0.04, 0.05, 0.06],
    )
    # One stop rule of two says stop: below the default quorum (all of them).
    assert classic(history)[0] == "check"
    assert classic(history, quorum=0.5)[0] == "stop"
    # Watch rules never count towards the quorum: without a holdout, contradictions decide.
    assert classic(history.drop(columns="holdout_accuracy"))[0] == "stop"


def test_a_stop_rule_still_waiting_for_history_counts_against_stopping():
    history = _history(
        contradiction_ratio=[0.005, 0.004, 0.003, 0.002], holdout_accuracy=[0.8, 0.8, 0.8, 0.8]
    )
    # Contradictions say stop at 3 versions; the holdout rule needs k + 1 = 4 values.
    advice, reasons = classic(history.iloc[:3])
    assert advice == "check" and any("needs 4" in r for r in reasons)
    assert classic(history)[0] == "stop"


def test_advice_reads_the_long_form_and_keeps_the_latest_rerun():
    wide = _history(contradiction_ratio=[NAN, 0.2, 0.008, 0.006, 0.004])
    long = wide.melt(id_vars="n_labels", var_name="metric", value_name="value")
    long = long.sample(frac=1.0, random_state=0)  # order comes from n_labels
    assert classic(long) == classic(wide)
    rerun = pd.DataFrame({"n_labels": [250], "metric": ["contradiction_ratio"], "value": [0.3]})
    assert classic(pd.concat([long, rerun]))[0] == "continue"


def test_advice_takes_the_versions_in_training_order_not_by_label_count():
    # The reviewer's cases: v4 and v5 share 250 labels (a relabel round); v9 has fewer labels
    # than v8 (undos). The last three versions are not all near zero: no stop.
    shared = pd.DataFrame(
        {
            "model_version": ["2", "3", "4", "5"],
            "n_labels": [150, 200, 250, 250],
            "metric": "contradiction_ratio",
            "value": [0.004, 0.004, 0.30, 0.003],
        }
    )
    advice, reasons = classic(shared.sample(frac=1.0, random_state=1))
    assert advice != "stop" and "0.4%, 30.0%, 0.3%" in reasons[0]
    undone = shared.assign(
        model_version=["7", "8", "9", "10"],
        n_labels=[200, 210, 220, 150],
        value=[0.005, 0.004, 0.003, 0.40],
    )
    advice, reasons = classic(undone)
    assert advice != "stop" and reasons[0].endswith("(stop below 1.0%)")
    assert "0.4%, 0.3%, 40.0%" in reasons[0]  # '10' after '9', not before it
    # A version measured twice counts once, its latest row.
    stamps = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(range(5), unit="min")
    rerun = pd.concat([shared, shared.iloc[[3]].assign(value=0.5)], ignore_index=True)
    rerun["computed_at"] = stamps
    advice, reasons = classic(rerun)
    assert "0.4%, 30.0%, 50.0%" in reasons[0]


def test_advice_with_too_short_or_no_history():
    advice, reasons = classic(_history(contradiction_ratio=[NAN, 0.001]))
    assert advice == "continue" and "needs 3" in reasons[0]
    advice, reasons = classic(_history(batch_easiness=[0.5, 0.6]))
    assert advice == "continue" and "no stopping signal" in reasons[0]
    with pytest.raises(InputError, match="metric_history is empty"):
        classic(pd.DataFrame())
    with pytest.raises(InputError, match="must be a DataFrame"):
        classic([0.1, 0.2])
    mixed = _history(contradiction_ratio=[0.1, 0.2]).assign(model_name=["m1", "m2"])
    with pytest.raises(InputError, match="several values of model_name"):
        classic(mixed)
    with pytest.raises(InputError, match="quorum"):
        classic(_history(contradiction_ratio=[0.1]), quorum=0)


@pytest.mark.parametrize("policy", ["default", "classic"])
def test_advice_stops_an_easy_simulated_loop_before_the_pool_runs_out(policy):
    # Margin sampling on an easy problem, no holdout (as for a real team): the advice must
    # say stop well before the pool is labeled, at an accuracy close to the whole pool's.
    chosen = default_policy() if policy == "default" else classic_policy()
    X, y = make_classification(1500, n_features=8, n_informative=4, class_sep=2.0, random_state=0)
    X_pool, y_pool, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    sample = sample_for_contradictions(len(X_pool), 500, random_state=0)
    labeled = list(np.random.default_rng(0).choice(len(X_pool), 20, replace=False))
    rows, batches, previous, advice = [], [], None, "continue"
    while advice != "stop" and len(labeled) < len(X_pool) - 20:
        model = LogisticRegression().fit(X_pool[labeled], y_pool[labeled])
        predicted = model.predict(X_pool[sample])
        unlabeled = np.setdiff1d(np.arange(len(X_pool)), labeled)
        uncertainty = margin(model.predict_proba(X_pool[unlabeled]))
        best = np.argsort(-uncertainty, kind="stable")[:20]
        batches.append(uncertainty[best])
        on_sample = model.predict_proba(X_pool[sample])
        still_unlabeled = ~np.isin(sample, labeled)
        mean_u, max_u = sample_uncertainty(on_sample[still_unlabeled])
        rows.append(
            {
                "n_labels": len(labeled),
                "contradiction_ratio": (
                    NAN if previous is None else contradiction_ratio(previous, predicted)
                ),
                "stop_set_kappa": NAN if previous is None else stop_set_kappa(previous, predicted),
                "uncertainty_variance": uncertainty_variance(batches),
                "mean_confidence": mean_confidence(on_sample),
                "overall_uncertainty": mean_u,
                "max_uncertainty": max_u,
                "accuracy": model.score(X_test, y_test),  # not given to the advice
            }
        )
        advice, _ = stopping_advice(pd.DataFrame(rows).drop(columns="accuracy"), policy=chosen)
        previous = predicted
        labeled += list(unlabeled[best])
    whole_pool = LogisticRegression().fit(X_pool, y_pool).score(X_test, y_test)
    assert advice == "stop"
    assert rows[-1]["n_labels"] < len(X_pool) / 2
    assert rows[-1]["accuracy"] >= whole_pool - 0.02


# ---------------------------------------------------------------- labels


def _events(rows, **extra):
    columns = ["item_id", "annotator", "label", "status"]
    frame = pd.DataFrame(rows, columns=columns)
    frame.insert(0, "event_id", np.arange(1, len(frame) + 1))
    start = pd.Timestamp("2024-03-01 09:00", tz="UTC")
    frame["created_at"] = start + pd.to_timedelta(10 * frame["event_id"], unit="s")
    for name, values in extra.items():
        frame[name] = values
    return frame


def test_current_labels_follow_the_latest_event():
    events = _events(
        [
            ("i1", "ann", "cat", "labeled"),
            ("i2", "ann", "dog", "labeled"),
            ("i3", "ann", "cat", "labeled"),
            ("i1", "bob", "bird", "labeled"),  # relabel: bird wins
            ("i2", "bob", None, "undone"),  # undo: i2 unlabeled
            ("i3", "bob", None, "skipped"),  # a later skip: no label either
        ]
    )
    current = current_labels(events)
    assert current[["item_id", "label"]].to_numpy().tolist() == [["i1", "bird"]]
    # Without event_id, created_at orders the events the same way.
    assert current_labels(events.drop(columns="event_id").iloc[::-1])["label"].tolist() == ["bird"]


def test_class_balance_by_hand_and_from_events():
    share = class_balance(["b", "a", "b", "c", "b", "a"])
    assert share.to_dict() == pytest.approx({"b": 0.5, "a": 1 / 3, "c": 1 / 6})
    assert list(share.index) == ["b", "a", "c"]
    events = _events(
        [
            ("i1", "ann", "x", "labeled"),
            ("i2", "ann", "y", "labeled"),
            ("i1", "ann", "y", "labeled"),
        ]
    )
    assert class_balance(events).to_dict() == {"y": 1.0}
    with pytest.raises(InputError, match="labels is empty"):
        class_balance([])


def test_labels_per_hour_by_hand():
    start = pd.Timestamp("2024-03-01 09:00", tz="UTC")
    seconds = [0, 20, 40, 3600, 0, 60]
    events = pd.DataFrame(
        {
            "annotator": ["ann", "ann", "ann", "ann", "bob", "bob"],
            "status": ["labeled", "labeled", "skipped", "labeled", "labeled", "labeled"],
            "created_at": [start + pd.Timedelta(seconds=s) for s in seconds],
            "lead_time_ms": [15_000, 18_000, 19_000, 30_000, None, 50_000],
        }
    )
    table = labels_per_hour(events).set_index("annotator")
    # ann: 15 (own lead) + 20 + 20 + 30 (after a break: own lead) = 85 s, 3 labels.
    assert table.loc["ann", "n_labels"] == 3 and table.loc["ann", "n_events"] == 4
    assert table.loc["ann", "active_hours"] == pytest.approx(85 / 3600)
    assert table.loc["ann", "labels_per_hour"] == pytest.approx(3 / (85 / 3600))
    # bob: no lead time on the first event (0 s), then a 60 s gap: 2 labels in 60 s.
    assert table.loc["bob", "labels_per_hour"] == pytest.approx(120.0)
    team = labels_per_hour(events, by=None)
    assert team["n_labels"].item() == 5
    assert team["active_hours"].item() == pytest.approx(145 / 3600)
    hourly = labels_per_hour(events, freq="1h")
    assert hourly.loc[hourly["annotator"] == "ann", "n_labels"].tolist() == [2, 1]


def test_labels_per_hour_bad_input():
    events = _events([("i1", "ann", "x", "labeled")])
    with pytest.raises(InputError, match="lacks column\\(s\\) created_at"):
        labels_per_hour(events.drop(columns="created_at"))
    events.loc[0, "status"] = "done"
    with pytest.raises(InputError, match="'status' has 'done' at row 0"):
        labels_per_hour(events)
    with pytest.raises(InputError, match="events is empty"):
        labels_per_hour(events.iloc[:0])


def test_median_lead_time():
    events = pd.DataFrame(
        {
            "status": ["labeled", "labeled", "skipped", "labeled", "labeled"],
            "lead_time_ms": [2_000, 9_000, 60_000, 3_000, None],
        }
    )
    assert median_lead_time(events) == 3.0
    assert np.isnan(median_lead_time(events.assign(lead_time_ms=None)))
    with pytest.raises(InputError, match="lead_time_ms' is negative at row 1"):
        median_lead_time(events.assign(lead_time_ms=[1, -5, 1, 1, 1]))


def test_labeler_agreement_two_labelers_uses_latest_labels():
    events = _events(
        [
            ("a", "ann", "x", "labeled"),
            ("a", "bob", "y", "labeled"),
            ("a", "bob", "x", "labeled"),  # bob changes his mind: x
            ("b", "ann", "x", "labeled"),
            ("b", "bob", "y", "labeled"),
            ("c", "ann", "y", "labeled"),
            ("c", "bob", "y", "labeled"),
            ("d", "ann", "y", "labeled"),
            ("d", "bob", "y", "labeled"),
            ("e", "ann", "x", "labeled"),  # only one labeler
            ("f", "ann", "x", "labeled"),
            ("f", "bob", "y", "labeled"),
            ("f", "bob", None, "undone"),  # bob's label undone: f not compared
        ]
    )
    result = labeler_agreement(events)
    # Items a..d: ann x x y y, bob x y y y -> kappa 0.5 (as in the hand case above).
    assert result == {
        "kappa": pytest.approx(0.5),
        "method": "cohen",
        "n_items": 4,
        "n_annotators": 2,
    }


def test_labeler_agreement_three_labelers_is_fleiss():
    events = _events(
        [
            ("a", "ann", "x", "labeled"),
            ("a", "bob", "x", "labeled"),
            ("a", "cat", "y", "labeled"),
            ("b", "ann", "y", "labeled"),
            ("b", "cat", "y", "labeled"),
        ]
    )
    result = labeler_agreement(events)
    # Table [[2, 1], [0, 2]]: P = (1/3, 1), P_bar = 2/3, p = (2/5, 3/5), P_e = 13/25.
    assert result["method"] == "fleiss" and result["n_items"] == 2
    assert result["kappa"] == pytest.approx((2 / 3 - 13 / 25) / (1 - 13 / 25))
    assert result["kappa"] == pytest.approx(fleiss_kappa([[2, 1], [0, 2]]))


def test_labeler_agreement_without_overlap_and_per_dataset():
    events = _events([("a", "ann", "x", "labeled"), ("a", "bob", "x", "labeled")])
    # The same item id in two datasets is two items: no overlap.
    split = labeler_agreement(events.assign(dataset=["d1", "d2"]))
    assert split["n_items"] == 0 and np.isnan(split["kappa"]) and split["method"] is None
    # One overlapped item, one class: kappa undefined but the item is counted.
    same = labeler_agreement(events)
    assert same["n_items"] == 1 and np.isnan(same["kappa"])
    with pytest.raises(InputError, match="lacks column\\(s\\) annotator"):
        labeler_agreement(events.drop(columns="annotator"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: contradiction_ratio([1.0, NAN], [1.0, NAN]),
        lambda: cohen_kappa(["a", None, "b"], ["a", "b", "b"]),
    ],
)
def test_a_missing_class_label_is_refused_with_its_position(call):
    with pytest.raises(InputError, match=r"missing class label.*position 1"):
        call()
