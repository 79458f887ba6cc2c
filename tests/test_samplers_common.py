"""The contract every sampler meets, checked over all of them (scikit-learn style)."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from active_labeling import samplers
from active_labeling.errors import BatchSizeWarning, InputError, NotFittedError

from sampler_factories import SAMPLER_FACTORIES

ALL = list(SAMPLER_FACTORIES)


def fitted(name, problem, batch_size=7, random_state=0):
    X_lab, y_lab, _ = problem
    return SAMPLER_FACTORIES[name](batch_size, random_state).fit(X_lab, y_lab)


def test_every_public_sampler_is_checked():
    public = {
        name
        for name, obj in vars(samplers).items()
        if inspect.isclass(obj)
        and issubclass(obj, samplers.BaseSampler)
        and obj not in (samplers.BaseSampler, samplers.ScoredSampler)
    }
    checked = {type(make(1, 0)).__name__ for make in SAMPLER_FACTORIES.values()}
    assert public == checked


@pytest.mark.parametrize("name", ALL)
def test_clone_keeps_parameters_and_drops_fitted_state(name, problem):
    sampler = fitted(name, problem)
    copy = clone(sampler)
    assert type(copy) is type(sampler)
    assert set(copy.get_params(deep=False)) == set(sampler.get_params(deep=False))
    assert not [attr for attr in vars(copy) if attr.endswith("_")]


@pytest.mark.parametrize("name", ALL)
def test_fit_returns_self(name, problem):
    X_lab, y_lab, _ = problem
    sampler = SAMPLER_FACTORIES[name](5, 0)
    assert sampler.fit(X_lab, y_lab) is sampler


@pytest.mark.parametrize("name", ALL)
def test_constructor_only_stores_parameters(name):
    sampler = SAMPLER_FACTORIES[name](5, 0)
    init_params = set(inspect.signature(type(sampler).__init__).parameters) - {"self"}
    assert set(vars(sampler)) == init_params


@pytest.mark.parametrize("name", ALL)
def test_same_random_state_gives_same_selection(name, problem):
    pool = problem[2]
    first = fitted(name, problem, random_state=42).select_samples(pool)
    second = fitted(name, problem, random_state=42).select_samples(pool)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("batch_size", [1, 7, 40])
def test_selection_is_a_batch_of_distinct_pool_positions(name, batch_size, problem):
    pool = problem[2]
    picked = fitted(name, problem, batch_size=batch_size).select_samples(pool)
    assert picked.ndim == 1
    assert np.issubdtype(picked.dtype, np.integer)
    assert picked.shape[0] == batch_size
    assert np.unique(picked).shape[0] == picked.shape[0]
    assert picked.min() >= 0 and picked.max() < pool.shape[0]


@pytest.mark.parametrize("name", ALL)
def test_batch_larger_than_pool_returns_the_whole_pool_with_a_warning(name, problem):
    pool = problem[2][:5]
    sampler = fitted(name, problem, batch_size=10)
    with pytest.warns(BatchSizeWarning, match="larger than the pool"):
        picked = sampler.select_samples(pool)
    assert sorted(picked.tolist()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ALL)
def test_empty_pool_raises(name, problem):
    sampler = fitted(name, problem)
    with pytest.raises(InputError, match="empty"):
        sampler.select_samples(np.empty((0, problem[2].shape[1])))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pool_value_names_row_and_column(name, bad, problem):
    pool = problem[2].copy()
    pool[13, 4] = bad
    with pytest.raises(InputError, match=r"row 13, column 4"):
        fitted(name, problem).select_samples(pool)


@pytest.mark.parametrize("name", ALL)
def test_non_finite_labeled_value_names_row_and_column(name, problem):
    X_lab, y_lab, _ = problem
    X_lab = X_lab.copy()
    X_lab[2, 1] = np.nan
    sampler = SAMPLER_FACTORIES[name](5, 0)
    if type(sampler).fit is samplers.BaseSampler.fit:
        pytest.skip("this sampler does not look at the labeled data")
    with pytest.raises(InputError, match=r"labeled X .*row 2, column 1"):
        sampler.fit(X_lab, y_lab)


@pytest.mark.parametrize("name", ALL)
def test_bad_batch_size_is_named(name, problem):
    with pytest.raises(InputError, match="batch_size"):
        fitted(name, problem, batch_size=0).select_samples(problem[2])


@pytest.mark.parametrize("name", ALL)
def test_lists_and_arrays_give_the_same_selection(name, problem):
    pool = problem[2][:60]
    as_array = fitted(name, problem, random_state=3).select_samples(pool)
    as_list = fitted(name, problem, random_state=3).select_samples(pool.tolist())
    np.testing.assert_array_equal(as_array, as_list)


@pytest.mark.parametrize("name", ALL)
def test_numeric_dataframe_pool_is_accepted(name, problem):
    pool = problem[2][:60]
    frame = pd.DataFrame(pool, columns=[f"f{i}" for i in range(pool.shape[1])])
    from_frame = fitted(name, problem, random_state=3).select_samples(frame)
    from_array = fitted(name, problem, random_state=3).select_samples(pool)
    np.testing.assert_array_equal(from_frame, from_array)


MODEL_BASED = [name for name in ALL if "classifier" in SAMPLER_FACTORIES[name](1, 0).get_params()]


@pytest.mark.parametrize("name", MODEL_BASED)
def test_model_based_sampler_refuses_to_select_before_fit(name, problem):
    with pytest.raises(NotFittedError, match="fit"):
        SAMPLER_FACTORIES[name](3, 0).select_samples(problem[2])


@pytest.mark.parametrize("name", MODEL_BASED)
def test_prefit_classifier_is_used_as_given_and_not_refitted(name, problem):
    X_lab, y_lab, pool = problem
    template = SAMPLER_FACTORIES[name](5, 0)
    classifier = template.classifier
    if isinstance(classifier, list):
        classifier = [clone(c).fit(X_lab, y_lab) for c in classifier]
    else:
        classifier = clone(classifier).fit(X_lab, y_lab)
    if name.startswith("CommitteeSampler") and not isinstance(classifier, list):
        classifier = [classifier, clone(classifier).fit(X_lab[::2], y_lab[::2])]
    sampler = clone(template).set_params(classifier=classifier, prefit=True)
    # Labels that would change the model if it were refitted.
    sampler.fit(X_lab, np.zeros_like(y_lab))
    if hasattr(sampler, "classifier_"):
        assert sampler.classifier_ is classifier
    else:
        assert all(a is b for a, b in zip(sampler.members_, classifier, strict=True))
    assert sampler.select_samples(pool).shape == (5,)


@pytest.mark.parametrize("name", MODEL_BASED)
def test_classifier_without_predict_proba_is_refused(name, problem):
    from sklearn.svm import LinearSVC

    X_lab, y_lab, _ = problem
    sampler = SAMPLER_FACTORIES[name](3, 0).set_params(classifier=LinearSVC())
    with pytest.raises(InputError, match="predict_proba"):
        sampler.fit(X_lab, y_lab)


@pytest.mark.parametrize("name", MODEL_BASED)
def test_fit_does_not_touch_the_callers_classifier(name, problem):
    X_lab, y_lab, _ = problem
    sampler = SAMPLER_FACTORIES[name](3, 0)
    members = sampler.classifier if isinstance(sampler.classifier, list) else [sampler.classifier]
    sampler.fit(X_lab, y_lab)
    assert not any(hasattr(member, "classes_") for member in members)


@pytest.mark.parametrize("name", ALL)
def test_docstring_is_numpydoc_with_a_runnable_example(name):
    doc = inspect.getdoc(type(SAMPLER_FACTORIES[name](1, 0)))
    assert "Parameters\n----------" in doc
    assert "Examples\n--------" in doc and ">>>" in doc


#: Integer parameters of each sampler and their smallest valid value.
INT_PARAMS = [(name, "batch_size", 1) for name in ALL] + [
    ("KMeansSampler", "n_init", 1),
    ("MiniBatchKMeansSampler", "n_init", 1),
    ("MiniBatchKMeansSampler", "kmeans_batch_size", 1),
    ("WKMeansSampler", "beta", 1),
    ("IWKMeansSampler", "beta", 1),
    ("IWKMeansSampler", "max_iter", 1),
    ("CommitteeSampler", "n_members", 2),
    ("TypiClustSampler", "n_neighbors", 1),
    ("TypiClustSampler", "min_cluster_size", 1),
    ("TypiClustSampler", "max_clusters", 1),
]
NOT_INTEGERS = [1.5, "x", True, None]


INT_CASES = [
    pytest.param(name, param, minimum, bad, id=f"{name}-{param}={bad!r}")
    for name, param, minimum in INT_PARAMS
    for bad in [minimum - 1, -1, *NOT_INTEGERS]
]


def _bad_value_message(name, param, minimum, bad):
    expected = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    owner = type(SAMPLER_FACTORIES[name](1, 0)).__name__
    return re.escape(f"{owner}: {param} must be {expected}, got {bad!r}")


@pytest.mark.parametrize(("name", "param", "minimum", "bad"), INT_CASES)
def test_a_bad_integer_parameter_is_named_with_its_value_at_fit_and_at_select(
    name, param, minimum, bad, problem
):
    X_lab, y_lab, pool = problem
    message = _bad_value_message(name, param, minimum, bad)
    # The constructor only stores: the value is refused where the sampler starts working.
    sampler = SAMPLER_FACTORIES[name](5, 0).set_params(**{param: bad})
    with pytest.raises(InputError, match=message):
        sampler.fit(X_lab, y_lab)
    fitted = SAMPLER_FACTORIES[name](5, 0).fit(X_lab, y_lab).set_params(**{param: bad})
    with pytest.raises(InputError, match=message):
        fitted.select_samples(pool)


@pytest.mark.parametrize(("name", "param", "minimum"), INT_PARAMS)
def test_a_numpy_integer_parameter_is_an_integer(name, param, minimum, problem):
    X_lab, y_lab, pool = problem
    sampler = SAMPLER_FACTORIES[name](5, 0).set_params(**{param: np.int64(max(minimum, 5))})
    assert sampler.fit(X_lab, y_lab).select_samples(pool).shape == (5,)


@pytest.mark.parametrize("name", MODEL_BASED)
@pytest.mark.parametrize("bad", ["no", 0, None])
def test_prefit_must_be_a_bool(name, bad, problem):
    X_lab, y_lab, _ = problem
    sampler = SAMPLER_FACTORIES[name](5, 0).set_params(prefit=bad)
    with pytest.raises(InputError, match=re.escape(f"prefit must be True or False, got {bad!r}")):
        sampler.fit(X_lab, y_lab)


SEEDED = [name for name in ALL if "random_state" in SAMPLER_FACTORIES[name](1, 0).get_params()]


@pytest.mark.parametrize("name", SEEDED)
@pytest.mark.parametrize("bad", [-1, 1.5, "x", True])
def test_a_bad_random_state_is_named_with_its_value(name, bad, problem):
    X_lab, y_lab, pool = problem
    sampler = SAMPLER_FACTORIES[name](5, bad)
    message = f"random_state must be None, a non-negative int or a numpy Generator, got {bad!r}"
    with pytest.raises(InputError, match=re.escape(message)):
        sampler.fit(X_lab, y_lab).select_samples(pool)
