"""A pool streamed in chunks gives the selection of the whole pool, in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from active_labeling.errors import InputError
from active_labeling.samplers import (
    CommitteeSampler,
    EntropySampler,
    LeastConfidenceSampler,
    MarginSampler,
    PoolChunks,
    RandomSampler,
    WKMeansSampler,
    iter_chunks,
    top_k,
)

from sampler_factories import SAMPLER_FACTORIES, SCORED

NOT_STREAMED = [name for name in SAMPLER_FACTORIES if name not in SCORED]


def fitted(name, problem, batch_size=9, random_state=0):
    X_lab, y_lab, _ = problem
    return SAMPLER_FACTORIES[name](batch_size, random_state).fit(X_lab, y_lab)


@pytest.mark.parametrize("name", SCORED)
@pytest.mark.parametrize("chunk_size", [1, 37, 300, 1000])
def test_streamed_selection_equals_whole_pool_selection(name, chunk_size, problem):
    pool = problem[2]
    whole = fitted(name, problem).select_samples(pool)
    streamed = fitted(name, problem).select_samples(iter_chunks(pool, chunk_size))
    np.testing.assert_array_equal(streamed, whole)


@pytest.mark.parametrize("name", SCORED)
def test_a_list_of_chunks_wrapped_in_pool_chunks_is_a_stream(name, problem):
    pool = problem[2]
    chunks = PoolChunks([pool[:100], pool[100:250], pool[250:]])
    whole = fitted(name, problem).select_samples(pool)
    np.testing.assert_array_equal(fitted(name, problem).select_samples(chunks), whole)


@pytest.mark.parametrize("name", SCORED)
def test_dataframe_chunks_stream_too(name, problem):
    pool = pd.DataFrame(problem[2], columns=[f"f{i}" for i in range(problem[2].shape[1])])
    whole = fitted(name, problem).select_samples(pool)
    streamed = fitted(name, problem).select_samples(iter_chunks(pool, 64))
    np.testing.assert_array_equal(streamed, whole)


@pytest.mark.parametrize("name", SCORED)
def test_score_samples_gives_one_score_in_unit_interval_per_row(name, problem):
    scores = fitted(name, problem).score_samples(problem[2])
    assert scores.shape == (problem[2].shape[0],)
    assert scores.min() >= 0.0 and scores.max() <= 1.0


@pytest.mark.parametrize("name", ["MarginSampler", "CommitteeSampler", "RandomSampler"])
def test_selection_is_the_top_of_the_scores(name, problem):
    pool = problem[2]
    sampler = fitted(name, problem, batch_size=12)
    scores = sampler.score_samples(pool)
    picked = sampler.select_samples(pool)
    assert scores[picked].min() >= np.delete(scores, picked).max()
    assert (np.diff(scores[picked]) <= 0).all()  # best first


@pytest.mark.parametrize("name", NOT_STREAMED)
def test_samplers_needing_the_whole_pool_refuse_a_stream(name, problem):
    with pytest.raises(InputError, match="whole pool"):
        fitted(name, problem).select_samples(iter_chunks(problem[2], 50))


def test_non_finite_value_in_a_later_chunk_names_the_global_row(problem):
    pool = problem[2].copy()
    pool[123, 2] = np.nan
    sampler = fitted("MarginSampler", problem)
    with pytest.raises(InputError, match=r"row 123, column 2"):
        sampler.select_samples(iter_chunks(pool, 50))


def test_empty_stream_raises(problem):
    with pytest.raises(InputError, match="empty"):
        fitted("MarginSampler", problem).select_samples(iter([]))


def test_ties_break_towards_the_earlier_row_whole_or_streamed():
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.9, 0.9, 0.5])
    np.testing.assert_array_equal(top_k(scores, 3), [1, 2, 4])
    np.testing.assert_array_equal(top_k(scores, 5), [1, 2, 4, 5, 0])

    class Constant:
        classes_ = np.array([0, 1])

        def predict_proba(self, X):
            return np.full((len(X), 2), 0.5)

    pool = np.zeros((1000, 3))
    sampler = MarginSampler(Constant(), batch_size=5, prefit=True).fit()
    np.testing.assert_array_equal(sampler.select_samples(pool), np.arange(5))
    streamed = sampler.select_samples(iter_chunks(pool, 7))
    np.testing.assert_array_equal(streamed, np.arange(5))


@pytest.mark.parametrize(
    "sampler_class", [MarginSampler, EntropySampler, LeastConfidenceSampler, CommitteeSampler]
)
def test_a_rows_score_does_not_depend_on_the_rows_scored_with_it(sampler_class):
    """Few distinct rows repeated, through a pipeline whose scaler hands the classifier a
    column-major matrix: BLAS sums such a matrix-vector product differently for the last rows
    of a batch, so unsnapped scores of equal rows differ in the last bit with the chunking,
    and ties (hence the queue) follow where chunks start."""
    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(5, 3))
    pool = pd.DataFrame(distinct[rng.integers(0, 5, 600)], columns=["a", "b", "c"])
    labeled = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = (labeled["a"] + 0.5 * rng.normal(size=40) > 0).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    extra = {"random_state": 0} if sampler_class is CommitteeSampler else {}
    sampler = sampler_class(model, batch_size=30, **extra).fit(labeled, y)
    whole = sampler.score_samples(pool)
    for size in (1, 7, 64):
        chunked = np.concatenate([sampler.score_samples(c) for c in iter_chunks(pool, size)])
        np.testing.assert_array_equal(chunked, whole)
    equal_rows_scores = pd.Series(whole).groupby(pool.round(12).apply(tuple, axis=1)).nunique()
    assert (equal_rows_scores == 1).all()
    picked = sampler.select_samples(iter_chunks(pool, 7))
    np.testing.assert_array_equal(picked, sampler.select_samples(pool))


def test_random_sampler_is_uniform_over_the_pool():
    counts = np.zeros(20)
    for seed in range(2000):
        counts[
            RandomSampler(batch_size=3, random_state=seed).select_samples(np.zeros((20, 1)))
        ] += 1
    expected = 2000 * 3 / 20
    # Chi-square with 19 degrees of freedom: 43.8 is its 0.999 quantile.
    assert ((counts - expected) ** 2 / expected).sum() < 43.8


def _generated_chunks(n_chunks, chunk_rows, n_features, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n_chunks):
        yield rng.normal(size=(chunk_rows, n_features))


def test_streaming_memory_is_bounded_by_the_chunk_not_the_pool(problem):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 20))
    y = (X[:, 0] > 0).astype(int)
    sampler = MarginSampler(LogisticRegression(), batch_size=50).fit(X, y)
    chunk_rows, n_features = 2_000, 20
    chunk_bytes = chunk_rows * n_features * 8

    def peak(n_chunks):
        tracemalloc.start()
        sampler.select_samples(_generated_chunks(n_chunks, chunk_rows, n_features))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(5), peak(100)  # a 0.3 MB pool against a 6.4 MB pool
    assert large < 12 * chunk_bytes  # far below the 6.4 MB the whole pool would take
    assert large < 1.5 * small


def test_two_step_sampler_keeps_only_its_candidates_while_streaming():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 8))
    y = (X[:, 0] > 0).astype(int)
    sampler = WKMeansSampler(LogisticRegression(), batch_size=5, beta=4, random_state=0)
    sampler.fit(X, y)
    best = sampler._stream(_generated_chunks(30, 500, 8), 20, keep_rows=True)
    assert best.n_seen == 15_000
    assert best.index.shape == (20,) and best.rows.shape == (20, 8)


@pytest.mark.parametrize("name", SCORED)
def test_select_with_scores_gives_the_selection_and_its_scores(name, problem):
    pool = problem[2]
    sampler = fitted(name, problem)
    picked, scores = sampler.select_with_scores(iter_chunks(pool, 64))
    np.testing.assert_array_equal(picked, fitted(name, problem).select_samples(pool))
    assert scores.shape == picked.shape
    if name != "RandomSampler":  # random keys are drawn afresh by score_samples
        np.testing.assert_allclose(scores, sampler.score_samples(pool)[picked])


@pytest.mark.parametrize("name", NOT_STREAMED)
def test_unscored_samplers_give_no_scores(name, problem):
    picked, scores = fitted(name, problem).select_with_scores(problem[2])
    assert scores is None and picked.shape == (9,)
