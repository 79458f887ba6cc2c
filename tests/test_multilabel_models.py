"""Multi-label projects: label sets in, one-vs-rest or chained models out, thresholds per class."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.models import load_model, save_model
from active_labeling.models.multilabel import (
    best_thresholds,
    multilabel_scores,
    predict_label_sets,
    train_multilabel_classifier,
)

from flow_helpers import COLORS, make_multilabel_project, multilabel_rows, store_fingerprint


def frame_and_sets(n=80, seed=0):
    X, Y = multilabel_rows(n, seed)
    return pd.DataFrame(X, columns=["x1", "x2", "x3"]), Y


def test_thresholds_maximize_each_classs_f1_by_hand():
    # Class 0: positives at 0.8 and 0.3, a negative at 0.5 between them. Predicting the
    # top 1 (threshold in (0.5, 0.8)): F1 = 2/3; top 3 (threshold below 0.3): F1 = 2*2/(3+2)
    # = 0.8; top 2: 2*1/(2+2) = 0.5. So the threshold is halfway between 0.3 and 0.1.
    # Class 1: the top 2 (0.7, 0.6) are its positives: F1 = 1 with the threshold halfway
    # between 0.6 and 0.4.
    proba = np.array([[0.8, 0.6], [0.5, 0.4], [0.3, 0.7], [0.1, 0.0]])
    Y = np.array([[1, 1], [0, 0], [1, 1], [0, 0]])
    np.testing.assert_allclose(best_thresholds(proba, Y), [0.2, 0.5])
    # A class no item holds keeps 0.5; among equal F1s the one closest to 0.5 wins.
    np.testing.assert_allclose(
        best_thresholds(np.array([[0.9], [0.2]]), np.array([[0], [0]])), [0.5]
    )
    # Top 1 and top 4 both give F1 = 2/3: thresholds 0.75 and 0.05; 0.75 is closer to 0.5.
    np.testing.assert_allclose(
        best_thresholds(np.array([[0.9], [0.6], [0.3], [0.1]]), np.array([[1], [0], [0], [1]])),
        [0.75],
    )


def test_scores_and_predicted_sets_by_hand():
    Y_true = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]])
    Y_pred = predict_label_sets(
        np.array([[0.9, 0.1, 0.6], [0.2, 0.7, 0.7], [0.8, 0.3, 0.1]]), [0.5, 0.5, 0.65]
    )
    assert Y_pred.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    scores = multilabel_scores(Y_true, Y_pred)
    # TP 3, FP 1, FN 2: micro F1 = 6 / (6 + 3); classes: 1, 2/3, 0; 3 of 9 cells wrong.
    assert scores["f1_micro"] == pytest.approx(6 / 9)
    assert scores["f1_macro"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert scores["hamming_loss"] == pytest.approx(3 / 9)
    assert scores["subset_accuracy"] == pytest.approx(0.0)


@pytest.mark.parametrize("method", ["one_vs_rest", "classifier_chain"])
def test_a_multilabel_model_saves_loads_and_gives_one_probability_per_class(method, tmp_path):
    frame, Y = frame_and_sets()
    trained = train_multilabel_classifier(
        frame, Y, classes=COLORS, feature_columns=["x1", "x2", "x3"], method=method, cv=3
    )
    meta = trained.meta
    assert meta.multi_label and meta.multi_label_method == method
    assert list(meta.thresholds) == COLORS and all(0 < t < 1 for t in meta.thresholds.values())
    assert meta.class_counts == dict(zip(COLORS, Y.sum(axis=0).tolist(), strict=True))
    cv = meta.cv_scores
    assert len(cv.f1_micro.folds) == 3 and 0.6 < cv.f1_micro.mean <= 1
    assert 0 <= cv.hamming_loss.mean < 0.3 and 0 <= cv.subset_accuracy.mean <= 1
    saved = save_model(tmp_path, "tags", trained)
    loaded = load_model(tmp_path, "tags")
    proba = loaded.pipeline.predict_proba(frame)
    assert proba.shape == (80, 3) and not np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(proba, saved.pipeline.predict_proba(frame))
    assert json.loads((saved.path / "meta.json").read_text())["multi_label"] is True


def test_a_class_every_item_holds_or_none_does_gets_a_constant_and_still_loads(tmp_path):
    """One-vs-rest gives such a class a constant predictor, which skops does not trust by
    default: the loader trusts it (it predicts a constant, it runs no code)."""
    frame, Y = frame_and_sets()
    Y[:, 2] = 0
    trained = train_multilabel_classifier(
        frame, Y, classes=COLORS, feature_columns=["x1", "x2", "x3"], cv=3
    )
    save_model(tmp_path, "tags", trained)
    proba = load_model(tmp_path, "tags").pipeline.predict_proba(frame)
    assert (proba[:, 2] == 0).all()
    assert trained.meta.thresholds["blue"] == 0.5


def test_a_chain_with_a_constant_class_is_refused_naming_the_class():
    frame, Y = frame_and_sets()
    Y[:, 1] = 1
    with pytest.raises(
        InputError, match=r"class 'green' is held by every one of the 80.*one_vs_rest"
    ):
        train_multilabel_classifier(
            frame, Y, classes=COLORS, feature_columns=["x1"], method="classifier_chain"
        )


def test_a_label_matrix_of_the_wrong_shape_is_named():
    frame, Y = frame_and_sets()
    with pytest.raises(InputError, match=r"80 rows x 3 classes is expected, got shape \(80, 2\)"):
        train_multilabel_classifier(frame, Y[:, :2], classes=COLORS, feature_columns=["x1"])
    Y = Y.copy()
    Y[5, 1] = 2
    with pytest.raises(InputError, match="row 5 holds a value other than 0 and 1"):
        train_multilabel_classifier(frame, Y, classes=COLORS, feature_columns=["x1"])


def test_a_meta_json_that_says_multi_label_for_a_single_label_model_is_refused(tmp_path):
    from active_labeling.models import train_classifier

    frame, Y = frame_and_sets()
    trained = train_classifier(frame, Y[:, 0].astype(str), feature_columns=["x1"], cv=2)
    saved = save_model(tmp_path, "m", trained)
    meta = json.loads((saved.path / "meta.json").read_text())
    meta.update(multi_label=True, thresholds={"0": 0.5, "1": 0.5}, cv_scores=None)
    (saved.path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(
        InputError, match=r"field 'multi_label' is true but the model .* single-label"
    ):
        load_model(tmp_path, "m")


# -- the flow: import, train ---------------------------------------------------------------


def test_label_sets_import_in_the_projects_class_order(tmp_path):
    project = make_multilabel_project(tmp_path / "p", n=20, n_labels=0)
    path = tmp_path / "sets.csv"
    pd.DataFrame({"id": ["I0", "I1"], "label": ['["blue", "red"]', "[]"]}).to_csv(path, index=False)
    from active_labeling.store import labels

    with project.connect() as con:
        labels.import_labels(con, "pool", path, classes=COLORS, multi_label=True)
        stored = con.execute(
            "SELECT item_id, label FROM current_labels ORDER BY item_id"
        ).fetchall()
    assert stored == [("I0", '["red", "blue"]'), ("I1", "[]")]


@pytest.mark.parametrize(
    ("label", "allow_empty", "message"),
    [
        (
            '["red", "teal"]',
            True,
            r"row 2: label .*class 'teal' is not one of the project's classes",
        ),
        ("red", True, r"row 2: label 'red' is not a label set: .*JSON list"),
        ("[]", False, r"row 2: the label set is empty, and the project forbids it \(allow_empty"),
    ],
)
def test_a_bad_label_set_in_a_file_is_named_by_row_and_nothing_is_written(
    label, allow_empty, message, tmp_path
):
    project = make_multilabel_project(tmp_path / "p", n=20, n_labels=0, allow_empty=allow_empty)
    path = tmp_path / "sets.csv"
    pd.DataFrame({"id": ["I0", "I1"], "label": ['["red"]', label]}).to_csv(path, index=False)
    from active_labeling.store import labels

    before = store_fingerprint(project)
    with project.connect() as con, pytest.raises(InputError, match=message):
        labels.import_labels(
            con, "pool", path, classes=COLORS, multi_label=True, allow_empty=allow_empty
        )
    assert store_fingerprint(project) == before


def test_train_model_on_a_multilabel_project_saves_a_multilabel_version(tmp_path):
    from active_labeling.flow.train_model import TrainModelParams, train_model

    project = make_multilabel_project(tmp_path / "p", n=120, n_labels=60)
    with project.connect() as con:
        saved = train_model(con, project, dataset="pool", model="tags", params=TrainModelParams())
    assert saved.meta.multi_label and saved.meta.classes == COLORS
    assert saved.meta.training_rows == 60 and saved.meta.label_event_id is not None
    assert saved.meta.cv_scores.f1_micro.mean > 0.6


def _append_label(project, item_id, label):
    from active_labeling.store.labels import LabelEvent, append_events

    with project.connect() as con:
        append_events(con, [LabelEvent("pool", item_id, "labeled", "ann", label=label)])


@pytest.mark.parametrize(
    ("label", "allow_empty", "message"),
    [
        ('["red", "pink"]', True, r"dataset 'pool', item 'I70': label .*class 'pink' is not one"),
        ("blue", True, r"dataset 'pool', item 'I70': label 'blue' is not a label set"),
        ("[]", False, r"dataset 'pool', item 'I\d+': the label set is empty.*allow_empty = false"),
    ],
)
def test_training_refuses_a_bad_stored_label_set_naming_the_item(
    label, allow_empty, message, tmp_path
):
    """Events written before a setting changed (or by hand) are checked at training."""
    from active_labeling.flow.train_model import TrainModelParams, train_model

    project = make_multilabel_project(tmp_path / "p", n=100, n_labels=30)
    _append_label(project, "I70", label)
    project.config.project.allow_empty = allow_empty
    with project.connect() as con, pytest.raises(InputError, match=message):
        train_model(con, project, dataset="pool", model="tags", params=TrainModelParams())
    assert not (project.models_dir / "tags").exists()


def test_a_chain_on_a_single_label_project_is_refused_naming_the_field(tmp_path):
    from active_labeling.flow.train_model import TrainModelParams, train_model

    from flow_helpers import make_project

    project = make_project(tmp_path / "p", n=60, n_labels=20)
    params = TrainModelParams(multi_label_method="classifier_chain")
    with (
        project.connect() as con,
        pytest.raises(InputError, match=r"multi_label_method .* multi_label = false"),
    ):
        train_model(con, project, dataset="pool", model="m", params=params)


def test_a_multilabel_project_needs_its_classes(tmp_path):
    from active_labeling.flow.project import Project

    with pytest.raises(InputError, match="multi_label = true needs the classes"):
        Project.init(tmp_path / "p", multi_label=True)
