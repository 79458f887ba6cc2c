"""Inputs beyond plain arrays: pipelines on DataFrames, text, sparse, offsets, seeds, clones."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from active_labeling.errors import InputError, NotFittedError
from active_labeling.experiment import simulate_loop
from active_labeling.samplers import (
    CommitteeSampler,
    IWKMeansSampler,
    KCenterGreedySampler,
    MarginSampler,
    ScoredSampler,
    TypiClustSampler,
    WKMeansSampler,
    iter_chunks,
)
from active_labeling.samplers.registry import (
    MULTI_LABEL_STRATEGIES,
    STRATEGIES,
    make_sampler,
    needs_classifier,
)

from sampler_factories import MULTI_LABEL, SAMPLER_FACTORIES


def mixed_frame(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "city": rng.choice(["Paris", "Lyon", "Nice"], n),
        }
    )
    frame.loc[frame.index[::7], "b"] = np.nan  # the pipeline imputes these
    return frame


def mixed_pipeline():
    return make_pipeline(
        ColumnTransformer(
            [
                ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ]
        ),
        LogisticRegression(),
    )


MODEL_BASED = ["margin", "entropy", "least_confidence", "wkmeans", "iwkmeans", "badge", "committee"]


@pytest.mark.parametrize("strategy", MODEL_BASED)
def test_dataframes_with_categories_and_missing_values_go_through_the_pipeline(strategy):
    X_lab = mixed_frame(60, 0)
    y_lab = (X_lab["a"] > 0).astype(int).to_numpy()
    pool = mixed_frame(300, 1)
    model = mixed_pipeline().fit(X_lab, y_lab)
    sampler = make_sampler(strategy, classifier=model, batch_size=6, random_state=0)
    picked = sampler.fit(X_lab, y_lab).select_samples(pool)
    assert len(set(picked.tolist())) == 6
    again = make_sampler(strategy, classifier=model, batch_size=6, random_state=0)
    np.testing.assert_array_equal(again.fit(X_lab, y_lab).select_samples(pool), picked)


def test_wkmeans_on_a_dataframe_streams_like_the_whole_frame():
    X_lab = mixed_frame(60, 0)
    y_lab = (X_lab["a"] > 0).astype(int).to_numpy()
    pool = mixed_frame(400, 2)
    model = mixed_pipeline().fit(X_lab, y_lab)
    sampler = WKMeansSampler(model, 5, prefit=True, random_state=0).fit()
    np.testing.assert_array_equal(
        sampler.select_samples(iter_chunks(pool, 70)), sampler.select_samples(pool)
    )


def test_missing_value_refused_by_a_plain_model_is_named():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["x", "y", "z"])
    y = (X["x"] > 0).astype(int)
    sampler = MarginSampler(LogisticRegression(), 3).fit(X, y)
    pool = pd.DataFrame(rng.normal(size=(30, 3)), columns=["x", "y", "z"])
    pool.loc[12, "y"] = np.nan
    with pytest.raises(InputError, match=r"missing value at row 12, column 'y'"):
        sampler.select_samples(pool)
    with pytest.raises(InputError, match=r"missing value at row 52, column 'y'"):
        sampler.select_samples(iter_chunks(pd.concat([X, pool]), 25))  # 40 + 12
    X.loc[3, "z"] = np.nan
    with pytest.raises(InputError, match=r"labeled X has a missing value at row 3, column 'z'"):
        MarginSampler(LogisticRegression(), 3).fit(X, y)


def test_infinity_in_a_dataframe_is_refused_even_with_an_imputer():
    model = make_pipeline(SimpleImputer(), LogisticRegression())
    X = pd.DataFrame({"u": [0.0, 1, 2, 3], "v": [1.0, 0, 1, 0]})
    sampler = MarginSampler(model, 2).fit(X, [0, 0, 1, 1])
    pool = X.copy()
    pool.loc[2, "v"] = np.inf
    with pytest.raises(InputError, match=r"non-finite value \(inf\) at row 2, column 'v'"):
        sampler.select_samples(pool)


def test_text_goes_to_a_text_pipeline_as_a_list_or_a_series():
    texts = ["good movie", "bad movie", "great film", "awful film", "good film", "bad film"]
    labels = [1, 0, 1, 0, 1, 0]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression())
    sampler = MarginSampler(model, 2).fit(texts, labels)
    pool = ["good", "movie film", "awful", "great great"]
    picked = sampler.select_samples(pool)
    np.testing.assert_array_equal(sampler.select_samples(pd.Series(pool)), picked)


def text_problem():
    """A labeled set and a pool of short texts, as Python lists of str."""
    rng = np.random.default_rng(0)
    positive, negative, neutral = (
        ["good", "great", "nice"],
        ["bad", "awful", "dull"],
        ["movie", "film", "plot", "cast"],
    )

    def texts(n):
        sentiment = rng.integers(0, 2, n)
        words = [
            [rng.choice(positive if s else negative), *rng.choice(neutral, 2)] for s in sentiment
        ]
        return [" ".join(w) for w in words], sentiment.tolist()

    X_lab, y_lab = texts(30)
    pool, _ = texts(50)
    return X_lab, y_lab, pool


TEXT_STRATEGIES = [
    name for name in STRATEGIES if needs_classifier(name) and name not in MULTI_LABEL_STRATEGIES
] + ["random"]


@pytest.mark.parametrize("strategy", TEXT_STRATEGIES)
def test_a_text_pool_as_a_list_selects_as_an_array_a_series_and_a_stream(strategy):
    X_lab, y_lab, pool = text_problem()

    def picks(X_labeled, X_pool):
        model = make_pipeline(TfidfVectorizer(), LogisticRegression())
        params = {} if strategy in ("random", "committee") else {"prefit": False}
        sampler = make_sampler(strategy, classifier=model, batch_size=4, random_state=0, **params)
        return sampler.fit(X_labeled, y_lab).select_samples(X_pool).tolist()

    as_list = picks(X_lab, pool)
    assert len(set(as_list)) == 4
    assert picks(np.array(X_lab, dtype=object), np.array(pool, dtype=object)) == as_list
    assert picks(pd.Series(X_lab), pd.Series(pool)) == as_list
    assert picks(tuple(X_lab), tuple(pool)) == as_list
    if isinstance(make_sampler(strategy, classifier=LogisticRegression()), ScoredSampler):
        chunks = (pool[start : start + 15] for start in range(0, len(pool), 15))
        assert picks(X_lab, chunks) == as_list


def test_sparse_features_go_to_models_but_not_to_distance_samplers():
    rng = np.random.default_rng(0)
    X = sp.random(50, 8, density=0.3, random_state=0, format="csr")
    y = rng.integers(0, 2, 50)
    picked = MarginSampler(LogisticRegression(), 4).fit(X, y).select_samples(X)
    assert picked.shape == (4,)
    with pytest.raises(InputError, match="sparse"):
        KCenterGreedySampler(3).fit().select_samples(X)


def test_a_single_class_in_the_labeled_set_gets_advice():
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(InputError, match=r"single class.*model-free strategy"):
        MarginSampler(LogisticRegression(), 2).fit(X, np.zeros(10))


@pytest.mark.parametrize(
    ("labels", "shown"),
    [
        (np.zeros(10, dtype=np.int64), "0"),
        (np.array(["spam"] * 10), "'spam'"),
        (np.ones(10), "1.0"),
    ],
)
@pytest.mark.parametrize("strategy", ["margin", "committee"])
def test_the_single_class_error_shows_the_class_as_a_plain_value(strategy, labels, shown):
    X = np.random.default_rng(0).normal(size=(10, 2))
    sampler = make_sampler(strategy, classifier=LogisticRegression(), prefit=False)
    with pytest.raises(InputError, match=re.escape(f"single class ({shown} x 10)")):
        sampler.fit(X, labels)


def test_numpy_values_in_parameter_errors_show_as_plain_values():
    with pytest.raises(InputError, match=r"chunk_size must be a positive integer, got 0$"):
        list(iter_chunks(np.zeros((3, 1)), np.int64(0)))
    with pytest.raises(InputError, match=r"non-negative int or a numpy Generator, got -1$"):
        KCenterGreedySampler(2, random_state=np.int64(-1)).fit().select_samples(np.zeros((3, 1)))


def test_simulation_starts_with_two_classes_even_from_two_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (rng.random(200) < 0.05).astype(int)  # a rare class: a uniform pair is one class
    for seed in range(10):
        curve = simulate_loop(
            "margin",
            LogisticRegression(),
            X[:150],
            y[:150],
            X[150:],
            y[150:],
            initial_size=2,
            batch_size=2,
            n_rounds=1,
            random_state=seed,
        )
        assert curve.n_labeled == [2, 4]


def test_prefit_sampler_survives_clone_and_shares_the_fitted_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    sampler = make_sampler("margin", classifier=model, batch_size=3)
    copy = clone(sampler)
    assert copy.classifier is model
    np.testing.assert_array_equal(copy.fit().select_samples(X), sampler.fit().select_samples(X))
    members = [LogisticRegression().fit(X, y), LogisticRegression(C=0.01).fit(X, y)]
    committee = clone(CommitteeSampler(members, 3, prefit=True))
    assert committee.fit().select_samples(X).shape == (3,)


def test_unfitted_classifier_with_prefit_is_refused_early():
    with pytest.raises(NotFittedError, match="prefit=True but the classifier is not fitted"):
        MarginSampler(LogisticRegression(), 2, prefit=True).fit()
    with pytest.raises(NotFittedError, match="committee member 1"):
        CommitteeSampler(
            [LogisticRegression().fit([[0], [1]], [0, 1]), LogisticRegression()], 2, prefit=True
        ).fit()


def test_registry_lets_a_caller_refit_instead_of_prefit():
    sampler = make_sampler("margin", classifier=LogisticRegression(), batch_size=2, prefit=False)
    assert sampler.prefit is False


def test_k_center_is_unmoved_by_a_large_offset():
    rng = np.random.default_rng(0)
    X, L = rng.normal(size=(300, 4)), rng.normal(size=(10, 4))
    plain = KCenterGreedySampler(25).fit(L).select_samples(X)
    shifted = KCenterGreedySampler(25).fit(L + 1e8).select_samples(X + 1e8)
    np.testing.assert_array_equal(plain, shifted)


def test_wkmeans_is_unmoved_by_a_large_offset_on_a_feature_the_model_ignores():
    class FirstFeature:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            p = 1 / (1 + np.exp(-np.asarray(X)[:, 0]))
            return np.column_stack([1 - p, p])

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 3))
    shifted = X.copy()
    shifted[:, 1:] += 1e8
    sampler = WKMeansSampler(FirstFeature(), 5, prefit=True, random_state=0).fit()
    a, b = sampler.select_samples(X), sampler.select_samples(shifted)
    assert len(set(a) & set(b)) >= 4  # k-means itself moves a little in float64


def test_bagged_committee_of_pipelines_is_seeded_through_the_steps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = rng.integers(0, 3, 80)
    pool = rng.normal(size=(100, 3))
    template = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=5))

    def picks(seed):
        sampler = CommitteeSampler(template, 10, n_members=3, random_state=seed)
        return sampler.fit(X, y).select_samples(pool).tolist()

    assert picks(4) == picks(4)
    assert picks(4) != picks(5)


@pytest.mark.parametrize("strategy", sorted(set(STRATEGIES) - MULTI_LABEL_STRATEGIES))
def test_simulation_replays_with_a_model_that_draws_randomness(strategy):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 3))
    y = (X[:, 0] + rng.normal(scale=0.5, size=160) > 0).astype(int)

    def run():
        return simulate_loop(
            strategy,
            RandomForestClassifier(n_estimators=8),
            X[:120],
            y[:120],
            X[120:],
            y[120:],
            initial_size=6,
            batch_size=4,
            n_rounds=2,
            random_state=np.int64(3),
        )

    first, second = run(), run()
    assert first.seed == 3
    assert [s.tolist() for s in first.selected] == [s.tolist() for s in second.selected]
    assert first.accuracy == second.accuracy


SEEDED = [
    name
    for name, make in SAMPLER_FACTORIES.items()
    if "random_state" in make(1, 0).get_params()
    # a committee given as a list keeps its members' own seeds
    and not isinstance(make(1, 0).get_params().get("classifier"), list)
]


@pytest.mark.parametrize("name", SEEDED)
def test_the_seed_matters(name, problem):
    X_lab, y_lab, pool = problem
    selections = {
        tuple(SAMPLER_FACTORIES[name](8, seed).fit(X_lab, y_lab).select_samples(pool).tolist())
        for seed in range(6)
    }
    if name.startswith("KCenterGreedySampler"):  # the seed only picks a start when nothing
        # is labeled
        selections = {
            tuple(SAMPLER_FACTORIES[name](8, seed).fit().select_samples(pool).tolist())
            for seed in range(6)
        }
    assert len(selections) > 1


@pytest.mark.parametrize("name", SEEDED)
def test_a_numpy_generator_seeds_as_well_as_an_int(name, problem):
    X_lab, y_lab, pool = problem

    def picks():
        generator = np.random.default_rng(11)
        return SAMPLER_FACTORIES[name](5, generator).fit(X_lab, y_lab).select_samples(pool)

    np.testing.assert_array_equal(picks(), picks())


def test_parameter_names_in_errors():
    with pytest.raises(InputError, match="beta"):
        WKMeansSampler(LogisticRegression(), 2, beta=0).fit([[0], [1]], [0, 1]).select_samples(
            [[0.5]]
        )
    with pytest.raises(InputError, match="chunk_size"):
        list(iter_chunks(np.zeros((3, 1)), 0))
    with pytest.raises(InputError, match="n_members must be an integer of at least 2, got 1"):
        CommitteeSampler(LogisticRegression(), 2, n_members=1).fit([[0], [1]], [0, 1])
    with pytest.raises(InputError, match="a committee needs at least 2 members, got 1"):
        CommitteeSampler([LogisticRegression()], 2).fit([[0], [1]], [0, 1])


def test_batch_equal_to_the_pool_gives_it_whole_without_warning(
    single_label_problem, multilabel_problem, recwarn
):
    for name, make in SAMPLER_FACTORIES.items():
        X_lab, y_lab, pool = multilabel_problem if name in MULTI_LABEL else single_label_problem
        picked = make(10, 0).fit(X_lab, y_lab).select_samples(pool[:10])
        assert sorted(picked.tolist()) == list(range(10)), name
    assert not [w for w in recwarn if "larger than the pool" in str(w.message)]


def test_empty_dataframe_pool_is_refused(single_label_problem, multilabel_problem):
    for name, make in SAMPLER_FACTORIES.items():
        X_lab, y_lab, pool = multilabel_problem if name in MULTI_LABEL else single_label_problem
        with pytest.raises(InputError, match="empty"):
            make(3, 0).fit(X_lab, y_lab).select_samples(pd.DataFrame(pool[:0]))


def test_the_pool_is_scanned_for_nan_only_when_the_model_would_not_refuse_it():
    from sklearn import config_context
    from sklearn.tree import DecisionTreeClassifier

    from active_labeling.samplers.base import refuses_non_finite

    class Custom:
        def predict_proba(self, X):  # pragma: no cover - never called
            return X

    assert refuses_non_finite(LogisticRegression())
    assert not refuses_non_finite(make_pipeline(SimpleImputer(), LogisticRegression()))
    assert not refuses_non_finite(DecisionTreeClassifier())  # trees take NaN natively
    assert not refuses_non_finite(Custom())
    with config_context(assume_finite=True):
        assert not refuses_non_finite(LogisticRegression())


def test_nan_is_named_when_the_model_finds_it_first_and_when_the_sampler_does():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    pool = rng.normal(size=(100, 3))
    pool[61, 2] = np.nan
    for model in (LogisticRegression(), DecisionTreeClassifier(random_state=0)):
        sampler = MarginSampler(model, 3).fit(X, y)
        with pytest.raises(InputError, match=r"row 61, column 2"):
            sampler.select_samples(iter_chunks(pool, 25))


def _named(values, columns):
    return pd.DataFrame(values, columns=columns)


LABELED_SET_SAMPLERS = {
    "KCenterGreedySampler": lambda: KCenterGreedySampler(4, random_state=0),
    "TypiClustSampler": lambda: TypiClustSampler(4, n_neighbors=5, random_state=0),
    "IWKMeansSampler": lambda: IWKMeansSampler(LogisticRegression(), 4, random_state=0),
}


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
@pytest.mark.parametrize("name", LABELED_SET_SAMPLERS)
def test_a_pool_with_its_columns_in_another_order_is_refused_by_name(name):
    rng = np.random.default_rng(0)
    columns = ["a", "b", "c"]
    X_lab = _named(rng.normal(size=(30, 3)) * [1, 10, 100], columns)
    y_lab = (X_lab["a"] > 0).astype(int).to_numpy()
    pool = _named(rng.normal(size=(80, 3)) * [1, 10, 100], columns)
    sampler = LABELED_SET_SAMPLERS[name]().fit(X_lab, y_lab)
    assert sampler.feature_names_in_.tolist() == columns
    in_order = sampler.select_samples(pool)
    with pytest.raises(
        InputError,
        match=rf"{name}: pool X has the columns of the labeled X in another order "
        r"\(column 0 is 'c', was 'a'\).*X_pool\[sampler\.feature_names_in_\]",
    ):
        sampler.select_samples(pool[["c", "b", "a"]])
    with pytest.raises(InputError, match=r"unseen at fit: 'd'; missing: 'c'"):
        sampler.select_samples(pool.rename(columns={"c": "d"}))
    # Reordered as the message says, the pool selects what it selected in order.
    shuffled = pool[["c", "b", "a"]]
    np.testing.assert_array_equal(
        sampler.select_samples(shuffled[sampler.feature_names_in_]), in_order
    )
    # An array has no names: it is taken by position, as scikit-learn does.
    np.testing.assert_array_equal(sampler.select_samples(pool.to_numpy()), in_order)


def test_a_refit_on_an_array_forgets_the_column_names():
    frame = _named(np.random.default_rng(0).normal(size=(20, 2)), ["a", "b"])
    sampler = KCenterGreedySampler(2).fit(frame)
    sampler.fit(frame.to_numpy())
    assert not hasattr(sampler, "feature_names_in_")
    assert sampler.select_samples(frame[["b", "a"]]).shape == (2,)


def test_iwkmeans_checks_every_chunk_of_a_streamed_pool():
    rng = np.random.default_rng(0)
    X_lab = _named(rng.normal(size=(30, 2)), ["a", "b"])
    y_lab = (X_lab["a"] > 0).astype(int).to_numpy()
    pool = _named(rng.normal(size=(60, 2)), ["a", "b"])
    sampler = IWKMeansSampler(LogisticRegression(), 3, random_state=0).fit(X_lab, y_lab)
    chunks = iter([pool[:30], pool[30:][["b", "a"]]])
    with pytest.raises(InputError, match="another order"):
        sampler.select_samples(chunks)


def _with_missing(kind, frame, row, column):
    """``frame`` with the cell (row, column) missing, stored the way ``kind`` says."""
    frame = frame.copy()
    if kind == "Float64":
        frame[column] = frame[column].astype("Float64")
        frame.loc[row, column] = pd.NA
    elif kind == "Int64":
        frame[column] = frame[column].round().astype("Int64")
        frame.loc[row, column] = pd.NA
    else:  # an object column holding pd.NA or None among floats
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = pd.NA if kind == "object pd.NA" else None
    return frame


MISSING_KINDS = ["Float64", "Int64", "object pd.NA", "object None"]
#: Samplers that must refuse a missing value: every one but random sampling (which ignores
#: the values) and the committee of trees and the forest (trees take missing values
#: natively).
REFUSE_MISSING = [
    name
    for name in SAMPLER_FACTORIES
    if name not in ("RandomSampler", "CommitteeSampler", "MeanBinaryUncertaintySampler[forest]")
]


@pytest.mark.parametrize("kind", MISSING_KINDS)
@pytest.mark.parametrize("name", REFUSE_MISSING)
def test_a_missing_value_of_any_pandas_kind_is_named_by_row_and_column(name, kind, problem):
    X_lab, y_lab, pool = problem
    columns = [f"f{j}" for j in range(pool.shape[1])]
    frame = _with_missing(kind, pd.DataFrame(pool, columns=columns), 13, "f4")
    sampler = SAMPLER_FACTORIES[name](5, 0).fit(X_lab, y_lab)
    with pytest.raises(InputError, match=r"^pool X has a missing value at row 13, column 'f4'"):
        sampler.select_samples(frame)
    cells = frame.to_numpy(dtype=object)  # the same cells in an object array
    with pytest.raises(InputError, match=r"^pool X has a missing value at row 13, column 4;"):
        sampler.select_samples(cells)


@pytest.mark.parametrize("kind", MISSING_KINDS)
@pytest.mark.parametrize(
    "name", ["KCenterGreedySampler", "TypiClustSampler", "IWKMeansSampler", "MarginSampler"]
)
def test_a_missing_labeled_value_of_any_pandas_kind_is_named(name, kind, problem):
    X_lab, y_lab, _ = problem
    columns = [f"f{j}" for j in range(X_lab.shape[1])]
    frame = _with_missing(kind, pd.DataFrame(X_lab, columns=columns), 2, "f1")
    with pytest.raises(InputError, match=r"^labeled X has a missing value at row 2, column 'f1'"):
        SAMPLER_FACTORIES[name](5, 0).fit(frame, y_lab)


@pytest.mark.parametrize("dtype", [object, "str"])
@pytest.mark.parametrize("name", ["KMeansSampler", "KCenterGreedySampler", "TypiClustSampler"])
def test_a_non_numeric_cell_is_named_by_row_and_column(name, dtype, problem):
    X_lab, y_lab, pool = problem
    frame = pd.DataFrame(pool, columns=[f"f{j}" for j in range(pool.shape[1])])
    frame["f2"] = frame["f2"].astype(dtype)  # "str": numbers as text, as read from a CSV
    frame.loc[7, "f2"] = "n/a"
    sampler = SAMPLER_FACTORIES[name](5, 0).fit(X_lab, y_lab)
    with pytest.raises(
        InputError, match=r"^pool X has a non-numeric value \('n/a'\) at row 7, column 'f2'"
    ):
        sampler.select_samples(frame)
