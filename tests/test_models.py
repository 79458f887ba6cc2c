"""Saved models: column kinds, training with each classifier, versions on disk, safe loading."""

from __future__ import annotations

import errno
import json
import os
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from active_labeling.errors import InputError
from active_labeling.models import (
    CLASSIFIERS,
    SAVED_ESTIMATOR_TYPES,
    TRUSTED_TYPES,
    ClassifierFactory,
    TrainedModel,
    build_preprocessor,
    infer_column_kinds,
    list_models,
    load_model,
    save_model,
    train_classifier,
)

FEATURES = ["amount", "visits", "channel", "comment"]
# Taken before the small_forests fixture replaces two of them.
REAL_CLASSIFIERS = dict(CLASSIFIERS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny fits gain nothing from BLAS and OpenMP threads, and lose a lot on a busy machine."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def mixed():
    """(frame, labels): 45 rows, 3 classes, numeric + categorical + text, some missing."""
    rng = np.random.default_rng(0)
    labels = np.repeat(["billing", "bug", "praise"], 15)
    words = {
        "billing": "charged twice on my invoice",
        "bug": "the app crashes on start",
        "praise": "great service thank you",
    }
    frame = pd.DataFrame(
        {
            "amount": np.where(labels == "billing", 80.0, 10.0) + rng.normal(size=45),
            "visits": pd.array(rng.integers(0, 9, 45), dtype="Int64"),
            "channel": rng.choice(["web", "phone", "mail"], 45),
            "comment": [words[label] for label in labels],
            "id": np.arange(45),
        },
        index=[f"item-{i}" for i in range(45)],
    )
    frame.loc["item-0", "amount"] = np.nan
    frame.loc["item-1", "visits"] = pd.NA
    frame.loc["item-2", "channel"] = None
    frame.loc["item-3", "comment"] = None
    return frame, labels


@pytest.fixture(scope="module")
def small_forests():
    """The classifiers of CLASSIFIERS with far fewer trees, for speed.

    The same classes, so the same preprocessing, dense input and saved types; the real
    settings are checked in test_classifier_factories_have_the_documented_settings. The
    default min_samples_leaf=20 of gradient boosting would allow no split on 45 rows.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(
            CLASSIFIERS,
            "random_forest",
            ClassifierFactory(lambda seed: RandomForestClassifier(10, random_state=seed)),
        )
        patch.setitem(
            CLASSIFIERS,
            "hist_gradient_boosting",
            replace(
                CLASSIFIERS["hist_gradient_boosting"],
                build=lambda seed: HistGradientBoostingClassifier(
                    max_iter=10, min_samples_leaf=5, random_state=seed
                ),
            ),
        )
        yield


@pytest.fixture(scope="module")
def trained(mixed, small_forests) -> dict[str, TrainedModel]:
    """One model per classifier, trained once for the module (cv=2 keeps it fast)."""
    frame, labels = mixed
    return {
        name: train_classifier(frame, labels, feature_columns=FEATURES, classifier=name, cv=2)
        for name in CLASSIFIERS
    }


@pytest.fixture(scope="module")
def small():
    """A tiny two-class model for tests about files rather than models; never modified."""
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": ["x", "y", "x", "y"]})
    return train_classifier(frame, ["no", "no", "yes", "yes"], feature_columns=["a", "b"], cv=2)


# Column kinds


def test_kinds_follow_dtype_then_values():
    frame = pd.DataFrame(
        {
            "price": [1.5, 2.0, None, 4.0],
            "count": pd.array([1, None, 3, 4], dtype="Int64"),
            "flag": [True, False, True, True],
            "country": ["FR", "DE", None, "FR"],
            "size": pd.Categorical(["s", "m", "l", "s"]),
            "review": ["works well for me", "broke after two days", None, "would buy again"],
            "url": [f"https://example.com/products/{i}/reviews/page" for i in range(4)],
        }
    )
    assert infer_column_kinds(frame, list(frame.columns)) == {
        "price": "numeric",
        "count": "numeric",
        "flag": "numeric",
        "country": "categorical",
        "size": "categorical",
        "review": "text",
        "url": "text",  # one token, but long and all distinct
    }


def test_explicit_kinds_win_over_inference():
    frame = pd.DataFrame(
        {"code": [10, 20, 10], "city": ["Paris", "Lyon", "Nice"], "tag": ["a b c d"] * 3}
    )
    kinds = infer_column_kinds(
        frame,
        ["code", "city", "tag"],
        text_columns=["city"],
        categorical_columns=["code", "tag"],
    )
    assert kinds == {"code": "categorical", "city": "text", "tag": "categorical"}


def test_missing_column_is_named_with_the_available_ones():
    frame = pd.DataFrame({"a": [1], "b": [2]})
    with pytest.raises(InputError, match=r"'c' not in the data; available columns: 'a', 'b'"):
        infer_column_kinds(frame, ["a", "c"])


@pytest.mark.parametrize(
    ("column", "options", "message"),
    [
        ("empty", {}, r"column 'empty' has no value"),
        ("when", {}, r"column 'when' has dtype datetime64"),
        ("num", {"text_columns": ["num"]}, r"column 'num' is numeric \(int64\) and cannot be"),
        ("strict", {}, r"column 'strict' has dtype string.*astype\('str'\)"),
        ("letters", {"text_columns": ["letters"]}, r"text column 'letters' has no word"),
        ("num", {"text_columns": ["other"]}, r"text_columns: 'other' not among the feature"),
        ("num", {"text_columns": ["num"], "categorical_columns": ["num"]}, r"'num' listed both"),
        ("num", {"text_columns": "num"}, r"text_columns must be a list .* the string 'num'"),
        (0, {}, r"feature columns must be column names \(str\), got 0"),
    ],
)
def test_unusable_columns_are_refused_by_name(column, options, message):
    frame = pd.DataFrame(
        {
            "empty": [None, None],
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "num": [1, 2],
            "strict": pd.array(["a", pd.NA], dtype="string"),
            "letters": ["a", "b c"],
            0: [1.0, 2.0],
        }
    )
    with pytest.raises(InputError, match=message):
        infer_column_kinds(frame, [column], **options)


def test_text_column_reads_nan_and_none_as_empty_text():
    frame = pd.DataFrame(
        {"note": pd.Series(["red apple", None, np.nan, "green apple"], dtype=object)}
    )
    preprocessor = build_preprocessor({"note": "text"}).fit(frame)
    vectors = preprocessor.transform(frame)
    vectors = vectors.toarray() if sparse.issparse(vectors) else vectors
    assert sorted(name.split("__")[-1] for name in preprocessor.get_feature_names_out()) == [
        "apple",
        "green",
        "red",
    ]
    assert not vectors[1].any() and not vectors[2].any()


def test_dense_preprocessor_returns_an_array_for_sparse_parts():
    frame = pd.DataFrame(
        {"c": [f"c{i}" for i in range(10)], "t": [f"word{i} other{i}" for i in range(10)]}
    )
    kinds = {"c": "categorical", "t": "text"}
    assert isinstance(build_preprocessor(kinds, dense=True).fit_transform(frame), np.ndarray)
    assert sparse.issparse(build_preprocessor(kinds).fit_transform(frame))


# Training


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_each_classifier_trains_on_mixed_columns(trained, mixed, name):
    frame, labels = mixed
    model = trained[name]
    meta = model.meta
    assert meta.classifier == name
    assert meta.classes == ["billing", "bug", "praise"]
    assert list(model.pipeline.classes_) == meta.classes
    assert meta.feature_columns == FEATURES
    assert meta.feature_kinds == {
        "amount": "numeric",
        "visits": "numeric",
        "channel": "categorical",
        "comment": "text",
    }
    assert meta.feature_dtypes == {
        "amount": "float64",
        "visits": "Int64",
        "channel": "str",
        "comment": "str",
    }
    assert meta.training_rows == 45
    assert meta.name is None and meta.version is None
    assert meta.trained_at.utcoffset().total_seconds() == 0
    assert set(meta.library_versions) == {
        "python",
        "numpy",
        "scikit-learn",
        "pandas",
        "skops",
        "active_labeling",
    }
    # The classes are separable by the comment alone: every fold should be nearly right.
    for scores in (meta.cv_scores.accuracy, meta.cv_scores.f1_macro):
        assert len(scores.folds) == 2
        assert 0.8 <= scores.mean <= 1.0
        assert scores.mean == pytest.approx(np.mean(scores.folds))
    assert meta.cv_note is None
    assert (model.pipeline.predict(frame) == labels).mean() > 0.9


def test_classifier_factories_have_the_documented_settings():
    assert REAL_CLASSIFIERS["logistic_regression"](0).max_iter == 1000
    forest = REAL_CLASSIFIERS["random_forest"](7)
    assert (forest.n_estimators, forest.random_state) == (200, 7)
    assert REAL_CLASSIFIERS["hist_gradient_boosting"](7).random_state == 7
    assert REAL_CLASSIFIERS["hist_gradient_boosting"].dense_input


def test_labels_become_strings():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    model = train_classifier(frame, [0, 0, 1, 1], feature_columns=["a"], cv=None)
    assert model.meta.classes == ["0", "1"]
    assert model.pipeline.predict(frame).tolist() == ["0", "0", "1", "1"]


def test_fewer_than_two_classes_says_how_many_labels_per_class():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(InputError, match=r"at least 2 classes, got 1: 'spam': 3"):
        train_classifier(frame, ["spam"] * 3, feature_columns=["a"])


def test_missing_label_names_the_row():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=["u", "v", "w"])
    with pytest.raises(InputError, match=r"row 2 \(index 'w'\) has no label"):
        train_classifier(frame, ["x", "y", None], feature_columns=["a"])


@pytest.mark.parametrize(
    ("rows", "options", "message"),
    [
        (0, {}, r"no row"),
        (4, {"classifier": "svm"}, r"classifier 'svm' is unknown; choose one of logistic_"),
        (4, {"cv": 1}, r"cv must be an int of at least 2"),
        (3, {}, r"4 labels for 3 rows"),
    ],
)
def test_bad_training_input_is_refused(rows, options, message):
    frame = pd.DataFrame({"a": np.arange(rows, dtype=float)})
    with pytest.raises(InputError, match=message):
        train_classifier(frame, list("xxyy")[: max(rows, 4)], feature_columns=["a"], **options)


def test_folds_shrink_to_the_smallest_class_then_stop():
    frame = pd.DataFrame({"a": np.arange(7, dtype=float)})
    two = train_classifier(frame, list("xxxxxyy"), feature_columns=["a"], cv=5)
    assert len(two.meta.cv_scores.accuracy.folds) == 2
    assert "2 folds instead of 5: class 'y' has only 2 labels" in two.meta.cv_note
    one = train_classifier(frame, list("xxxxxxy"), feature_columns=["a"], cv=5)
    assert one.meta.cv_scores is None
    assert "class 'y' has a single label" in one.meta.cv_note
    assert one.pipeline.predict(frame.tail(1)).shape == (1,)


def test_progress_is_reported_per_fold_then_for_the_fit():
    frame = pd.DataFrame({"a": np.arange(6, dtype=float)})
    calls = []
    train_classifier(
        frame, list("xxxyyy"), feature_columns=["a"], cv=3, progress=lambda *a: calls.append(a)
    )
    assert [(done, total) for done, total, _ in calls] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[-1][2] == "fit"


def test_unseen_categories_and_missing_values_at_prediction(trained):
    pool = pd.DataFrame(
        {
            "id": [100, 101, 102],  # an extra column, and the others reordered
            "comment": ["brand new words", None, np.nan],
            "channel": ["carrier pigeon", None, "web"],
            "visits": pd.array([None, 3, 99], dtype="Int64"),
            "amount": [np.nan, 1e6, -5.0],
        }
    )
    for model in trained.values():
        proba = model.pipeline.predict_proba(pool)
        assert proba.shape == (3, 3)
        assert np.allclose(proba.sum(axis=1), 1.0)


# Saving and loading


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_round_trip_gives_identical_probabilities(trained, mixed, tmp_path, name):
    frame, _ = mixed
    saved = save_model(tmp_path, "triage", trained[name])
    assert saved.path == tmp_path / "triage" / "1"
    assert sorted(p.name for p in saved.path.iterdir()) == ["meta.json", "model.skops"]
    loaded = load_model(tmp_path, "triage")
    assert (loaded.name, loaded.version) == ("triage", "1")
    np.testing.assert_array_equal(
        loaded.pipeline.predict_proba(frame), trained[name].pipeline.predict_proba(frame)
    )
    assert loaded.meta == trained[name].meta.model_copy(update={"name": "triage", "version": "1"})


@pytest.fixture(scope="module")
def trained_multilabel(mixed, small_forests) -> dict[str, TrainedModel]:
    """Per classifier, a one-vs-rest model with a class that no item holds (a constant
    predictor) and a classifier chain."""
    from active_labeling.models.multilabel import train_multilabel_classifier

    frame, labels = mixed
    Y = np.column_stack([labels == "billing", labels == "bug", np.zeros(len(labels))])
    chain_Y = Y.copy()
    chain_Y[::2, 2] = 1
    models = {}
    for name in CLASSIFIERS:
        for method, targets in [("one_vs_rest", Y), ("classifier_chain", chain_Y)]:
            models[f"{name}-{method}"] = train_multilabel_classifier(
                frame,
                targets.astype(int),
                classes=["billing", "bug", "other"],
                feature_columns=FEATURES,
                classifier=name,
                method=method,
                cv=2,
            )
    return models


def test_trusted_types_are_exactly_what_the_classifiers_need(trained, trained_multilabel, tmp_path):
    reported, estimators = set(), set()
    for name, model in {**trained, **trained_multilabel}.items():
        saved = save_model(tmp_path, name.replace("_", "-"), model)
        reported |= set(skops.io.get_untrusted_types(file=saved.path / "model.skops"))
        estimators |= _estimator_types(model.pipeline)
    assert reported == TRUSTED_TYPES
    assert estimators == SAVED_ESTIMATOR_TYPES


def _estimator_types(obj) -> set[str]:
    if isinstance(obj, BaseEstimator):
        found = {f"{type(obj).__module__}.{type(obj).__qualname__}"}
        return found.union(*map(_estimator_types, vars(obj).values()))
    if isinstance(obj, list | tuple | dict):
        items = obj.values() if isinstance(obj, dict) else obj
        return set().union(*map(_estimator_types, items))
    return set()


def test_versions_increase_and_latest_is_the_default(small, tmp_path):
    versions = [save_model(tmp_path, "m", small).version for _ in range(3)]
    assert versions == ["1", "2", "3"]
    save_model(tmp_path, "other_model", small)
    assert list_models(tmp_path) == {"m": ["1", "2", "3"], "other_model": ["1"]}
    assert load_model(tmp_path, "m").version == "3"
    assert load_model(tmp_path, "m", "2").meta.version == "2"
    assert json.loads((tmp_path / "m" / "2" / "meta.json").read_text())["version"] == "2"


def test_failed_save_leaves_previous_versions_and_no_partial_one(small, tmp_path, monkeypatch):
    save_model(tmp_path, "m", small)

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "rename", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_model(tmp_path, "m", small)
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["1"]
    assert load_model(tmp_path, "m").version == "1"


def test_a_save_killed_midway_leaves_an_ignored_staging_directory(small, tmp_path):
    save_model(tmp_path, "m", small)
    # What a process killed while writing leaves behind: a staging directory, half written.
    staging = tmp_path / "m" / ".saving-killed"
    staging.mkdir()
    (staging / "model.skops").write_bytes(b"PK\x03\x04 half a zip")
    (tmp_path / "only_killed" / ".saving-x").mkdir(parents=True)
    assert list_models(tmp_path) == {"m": ["1"]}
    assert load_model(tmp_path, "m").version == "1"
    assert save_model(tmp_path, "m", small).version == "2"


def test_a_writer_losing_the_race_takes_the_next_version(small, tmp_path, monkeypatch):
    save_model(tmp_path, "m", small)
    real_rename = os.rename

    def another_writer_first(src, dst):
        monkeypatch.setattr(os, "rename", real_rename)
        Path(dst).mkdir()
        (Path(dst) / "meta.json").write_text("the other writer's")
        real_rename(src, dst)  # fails: the target now exists and is not empty

    monkeypatch.setattr(os, "rename", another_writer_first)
    saved = save_model(tmp_path, "m", small)
    assert saved.version == "3"
    assert (tmp_path / "m" / "2" / "meta.json").read_text() == "the other writer's"
    assert load_model(tmp_path, "m", "3").meta.version == "3"


@pytest.mark.parametrize("name", ["../escape", "a b", "", "x/y", "dot.name"])
def test_invalid_model_names_are_refused(small, tmp_path, name):
    with pytest.raises(InputError, match="letters, digits, '-' and '_' only"):
        save_model(tmp_path, name, small)
    with pytest.raises(InputError, match="letters, digits, '-' and '_' only"):
        load_model(tmp_path, name)
    assert not any(tmp_path.iterdir())


def test_unknown_name_or_version_lists_what_exists(small, tmp_path):
    save_model(tmp_path, "alpha", small)
    save_model(tmp_path, "alpha", small)
    with pytest.raises(InputError, match=r"no saved model named 'beta'.*saved models: 'alpha'"):
        load_model(tmp_path, "beta")
    with pytest.raises(InputError, match=r"no version '7'; versions: 1, 2"):
        load_model(tmp_path, "alpha", "7")


# Refusing files that are not what this project saves. A marker file records whether any
# code from the file ran.

MARKER = Path(os.environ.get("TMPDIR", "/tmp")) / "active_labeling_test_code_ran"


class RunsCodeOnLoad:
    """A class whose construction from a file has a visible side effect."""

    def __init__(self):
        self.payload = 1

    def __setstate__(self, state):
        MARKER.touch()
        self.__dict__.update(state)

    def __reduce__(self):
        return (MARKER.touch, ())


@pytest.fixture
def saved_path(small, tmp_path):
    """The model.skops of a freshly saved model, and a clean marker."""
    MARKER.unlink(missing_ok=True)
    yield save_model(tmp_path, "m", small).path / "model.skops"
    MARKER.unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda: np.random.default_rng(0).bytes(2048), r"not a skops file \(BadZipFile"),
        (lambda: pickle.dumps(RunsCodeOnLoad()), r"not a skops file \(BadZipFile"),
        (
            lambda: skops.io.dumps(Pipeline([("evil", RunsCodeOnLoad())])),
            r"holds type 'test_models.RunsCodeOnLoad', which this project never saves",
        ),
        (
            lambda: skops.io.dumps(Pipeline([("f", FunctionTransformer(func=np.exp))])),
            r"holds estimator '.*FunctionTransformer', which this project never saves",
        ),
        (
            lambda: skops.io.dumps(LogisticRegression()),
            r"holds a LogisticRegression, not a Pipeline",
        ),
    ],
    ids=["random-bytes", "pickle", "custom-class", "function-transformer", "not-a-pipeline"],
)
def test_foreign_model_files_are_refused_by_name_without_running_code(saved_path, content, message):
    saved_path.write_bytes(content())
    with pytest.raises(InputError, match=message) as error:
        load_model(saved_path.parents[1].parent, "m")
    assert str(error.value).startswith(str(saved_path))
    assert not MARKER.exists()


def test_a_pipeline_load_would_refuse_is_not_saved(tmp_path):
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    model = train_classifier(frame, list("xxyy"), feature_columns=["a"], cv=None)
    model.pipeline.steps.insert(0, ("exp", FunctionTransformer(func=np.exp)))
    with pytest.raises(InputError, match=r"model 'm': the pipeline holds .*FunctionTransformer"):
        save_model(tmp_path, "m", model)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda meta: meta.update(classes="spam"), r"invalid field 'classes'"),
        (lambda meta: meta.pop("trained_at"), r"invalid field 'trained_at': Field required"),
        (lambda meta: meta.update(training_rows=-1), r"invalid field 'training_rows'"),
        (lambda meta: meta["cv_scores"]["accuracy"].pop("mean"), r"'cv_scores.accuracy.mean'"),
        (lambda meta: meta.update(version="9"), r"field 'version' is '9' but the directory"),
        (
            lambda meta: meta.update(classes=["yes", "no"]),
            r"field 'classes' is \['yes', 'no'\] but the model",
        ),
    ],
)
def test_invalid_meta_json_names_the_file_and_field(small, tmp_path, edit, message):
    path = save_model(tmp_path, "m", small).path / "meta.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=message) as error:
        load_model(tmp_path, "m")
    assert str(path) in str(error.value)


def test_unreadable_or_missing_meta_json_names_the_file(small, tmp_path):
    path = save_model(tmp_path, "m", small).path / "meta.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"meta.json: invalid content: Invalid JSON"):
        load_model(tmp_path, "m")
    path.unlink()
    with pytest.raises(InputError, match=r"meta.json: missing"):
        load_model(tmp_path, "m")


def test_check_pool_columns_names_the_missing_feature_columns(trained, tmp_path):
    saved = save_model(tmp_path, "m", trained["logistic_regression"])
    saved.check_pool_columns(["id", *FEATURES])
    with pytest.raises(
        InputError, match=r"needs feature columns 'channel', 'comment', missing from the pool"
    ):
        saved.check_pool_columns(["id", "amount", "visits"])
