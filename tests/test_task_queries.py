"""Active learning beyond classifiers: strategy ``precomputed`` (the user's own
uncertainties, any task type) and a spans model (a CRF) trained by train-model, ranking
texts by its uncertainty and proposing prelabels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from active_labeling.errors import InputError
from active_labeling.flow.project import Project
from active_labeling.flow.recipes import add_recipe, run_recipe
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.models.spans import load_spans_model
from active_labeling.samplers.precomputed import PrecomputedSampler
from active_labeling.store import datasets
from active_labeling.store.labels import LabelEvent, append_events

from media_helpers import TEXTS, folder_project, spans_of, spans_project


def _queue(project, queue="queue"):
    with project.connect(read_only=True) as con:
        return con.execute(
            "SELECT q.item_id, q.score, g.strategy, g.model_name FROM queue q JOIN "
            "queue_generations g USING (generation_id) WHERE g.queue = ? AND q.generation_id = "
            "(SELECT max(generation_id) FROM queue_generations WHERE queue = ?) ORDER BY q.rank",
            [queue, queue],
        ).fetchall()


def _query(project, pool, queue_size=3, **strategy_params):
    add_recipe(
        project,
        "query-sampler",
        "query",
        inputs={"pool": [pool]},
        outputs={"queue": ["queue"]},
        params={
            "strategy": "precomputed",
            "queue_size": queue_size,
            "strategy_params": strategy_params,
        },
    )
    run_recipe(project, "query", progress=False)


# --- precomputed -----------------------------------------------------------------------------


def test_the_sampler_ranks_by_the_given_uncertainty_and_refuses_non_finite_ones():
    sampler = PrecomputedSampler(batch_size=3).fit()
    picked, scores = sampler.select_with_scores(np.array([[0.2], [0.7], [0.1], [0.7], [0.9]]))
    assert picked.tolist() == [4, 1, 3] and scores.tolist() == [0.9, 0.7, 0.7]
    with pytest.raises(InputError, match="uncertainty of row 2 is nan"):
        sampler.select_samples(np.array([0.1, np.nan]))


def test_precomputed_ranks_a_column_without_a_model_and_leaves_labeled_items_out(tmp_path):
    project = Project.init(tmp_path / "p", classes=["a", "b"])
    (tmp_path / "rows.csv").write_text(
        "id,uncertainty\nr1,0.2\nr2,0.9\nr3,\nr4,0.5\nr5,0.9\nr6,0.7\n"
    )
    with project.connect() as con:
        project.record_dataset(
            datasets.import_file(con, "rows", tmp_path / "rows.csv", id_column="id")
        )
        append_events(con, [LabelEvent("rows", "r2", "labeled", "ann", label="a")])
    _query(project, "rows", column="uncertainty")
    # r2 is labeled, r3 has no number; ties in item order.
    assert _queue(project) == [
        ("r5", 0.9, "precomputed", None),
        ("r6", 0.7, "precomputed", None),
        ("r4", 0.5, "precomputed", None),
    ]


def test_precomputed_reads_a_file_of_the_users_model_for_a_folder_of_images(tmp_path):
    project = folder_project(tmp_path / "p", "boxes")
    scores = tmp_path / "scores.csv"
    scores.write_text("image,entropy\nimg1.jpg,0.1\nsub/img0.png,0.8\nimg3.jpg,0.4\n")
    _query(project, "media", file=str(scores), id_column="image", score_column="entropy")
    assert [r[0] for r in _queue(project)] == ["sub/img0.png", "img3.jpg", "img1.jpg"]


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "id,uncertainty\nimg1.jpg,0.1\nnope.jpg,0.3\n",
            "row 2: id 'nope.jpg' is not an item",
        ),
        ("id,uncertainty\nimg1.jpg,0.1\nimg1.jpg,0.3\n", "row 2: id 'img1.jpg' appears twice"),
        (
            "id,uncertainty\nimg1.jpg,high\n",
            "row 1: uncertainty 'high' is not a finite number",
        ),
        ("id,score\nimg1.jpg,0.1\n", "no column 'uncertainty'"),
    ],
)
def test_a_bad_uncertainty_file_is_refused_naming_the_row_and_writes_no_queue(
    tmp_path, content, message
):
    project = folder_project(tmp_path / "p", "boxes")
    (tmp_path / "u.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        _query(project, "media", file=str(tmp_path / "u.csv"))
    assert _queue(project) == []


def test_precomputed_needs_a_column_or_a_file(tmp_path):
    project = folder_project(tmp_path / "p", "boxes")
    with pytest.raises(InputError, match="either 'column'"):
        _query(project, "media")
    with pytest.raises(InputError, match="has no column 'nope'"):
        _query(project, "media", column="nope")


# --- spans: a CRF ----------------------------------------------------------------------------


@pytest.fixture
def trained(tmp_path):
    """A spans project with 10 of its 12 texts labeled, a CRF trained on them."""
    project = spans_project(tmp_path / "p")
    with project.connect() as con:
        append_events(
            con,
            [
                LabelEvent("texts", f"t{i}", "labeled", "ann", label=json.dumps(spans_of(s)))
                for i, (_, s) in enumerate(TEXTS[:10])
            ],
        )
    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["texts"], "labels": ["labels"]},
        outputs={"model": ["ner"]},
        params={},
    )
    run_recipe(project, "train", progress=False)
    return project


def test_train_model_on_a_spans_project_fits_a_crf_that_finds_the_names(trained):
    model = load_spans_model(trained.models_dir, "ner")
    assert model.version == "1" and model.meta.training_rows == 10 and model.meta.holdout_rows == 2
    assert model.meta.holdout_f1 is not None and model.meta.text_column == "text"
    text = "Ada Lovelace visited London ."
    assert model.predict_spans(text) == [
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 21, "end": 27, "label": "LOC"},
    ]
    sure, unsure = model.uncertainty(text), model.uncertainty("Zzyx qwv plonk .")
    assert 0 <= sure < 1 and 0 <= unsure <= 1
    assert model.uncertainty(text, "entropy") >= 0 and model.uncertainty("") == 0


@pytest.mark.parametrize("strategy", ["least_confidence", "entropy"])
def test_the_query_sampler_ranks_the_unlabeled_texts_by_the_spans_models_uncertainty(
    trained, strategy
):
    add_recipe(
        trained,
        "query-sampler",
        "query",
        inputs={"pool": ["texts"], "model": ["ner"]},
        outputs={"queue": ["queue"]},
        params={"strategy": strategy, "queue_size": 5},
    )
    run_recipe(trained, "query", progress=False)
    queue = _queue(trained)
    assert sorted(r[0] for r in queue) == ["t10", "t11"]  # only the unlabeled ones
    assert {r[2] for r in queue} == {strategy} and {r[3] for r in queue} == {"ner"}
    model = load_spans_model(trained.models_dir, "ner")
    kind = "sequence" if strategy == "least_confidence" else "entropy"
    expected = sorted((model.uncertainty(TEXTS[i][0], kind) for i in (10, 11)), reverse=True)
    assert [r[1] for r in queue] == pytest.approx(expected)


def test_a_classifier_strategy_with_a_spans_model_is_refused(trained):
    add_recipe(
        trained,
        "query-sampler",
        "query",
        inputs={"pool": ["texts"], "model": ["ner"]},
        outputs={"queue": ["queue"]},
        params={"strategy": "kcenter"},
    )
    with pytest.raises(InputError, match="model 'ner' is a spans model"):
        run_recipe(trained, "query", progress=False)


def test_the_labeling_page_gets_the_models_spans_as_prelabels(trained):
    with trained.connect() as con:
        password = add_user(con, "ann", "labeler")
    client = TestClient(create_app(trained.root))
    client.headers["X-CSRF-Token"] = client.post(
        "/api/login", json={"username": "ann", "password": password}
    ).json()["csrf_token"]
    item = client.get("/api/items/next").json()["items"][0]
    assert item["item_id"] == "t10"  # "Ada Lovelace wrote notes ."
    assert item["prelabels"]["model_version"] == "1"
    assert {"start": 0, "end": 12, "label": "PER"} in item["prelabels"]["model"]
    assert item["prelabels"]["dictionary"] == [{"start": 0, "end": 12, "label": "PER"}]


def test_train_model_refuses_a_boxes_dataset(tmp_path):
    project = folder_project(tmp_path / "p", "boxes")
    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["media"], "labels": ["labels"]},
        outputs={"model": ["det"]},
        params={},
    )
    with pytest.raises(InputError, match=r"labeled with boxes.*precomputed"):
        run_recipe(project, "train", progress=False)
