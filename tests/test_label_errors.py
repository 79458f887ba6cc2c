"""Likely label errors: the step and the train-model option score each label out of fold,
mark the suspects, the review queue shows them first, and what reviewers made of them is
counted (flow.label_errors)."""

from __future__ import annotations

import numpy as np
import pytest

from active_labeling.errors import InputError
from active_labeling.flow.label_errors import find_label_errors, suspect_outcomes
from active_labeling.flow.project import Project
from active_labeling.flow.recipes import add_recipe, run_recipe
from active_labeling.flow.scenario_config import ScenarioEntry, StepEntry, TriggerEntry
from active_labeling.flow.scenarios import ScenarioRunner
from active_labeling.labeling.review import ReviewDesk
from active_labeling.labeling.service import LabelingService
from active_labeling.store import datasets, labels

from flow_helpers import write_labels_csv

#: Items whose imported label is the wrong class.
FLIPPED = ["I3", "I17", "I42", "I66", "I90"]


def make_separable_project(root, *, n=400, find_label_errors=False) -> Project:
    """Two well separated classes (x > 0: yes), 300 labels imported, FLIPPED wrong; a
    train-model recipe 'train' writing model 'clf'."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-4, 0.5, n // 2), rng.normal(4, 0.5, n // 2)])
    rng.shuffle(x)
    root.mkdir(parents=True)
    pool = root / "pool.csv"
    pool.write_text(
        "id,x,y\n" + "".join(f"I{i},{v:.3f},{rng.normal():.3f}\n" for i, v in enumerate(x))
    )
    project = Project.init(root, classes=["yes", "no"], id_column="id")
    truth = {f"I{i}": "yes" if v > 0 else "no" for i, v in enumerate(x)}
    ids = [f"I{i}" for i in range(300)]
    given = [("no" if truth[i] == "yes" else "yes") if i in FLIPPED else truth[i] for i in ids]
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        labels.import_labels(
            con, "pool", write_labels_csv(root / "labels.csv", ids, given), classes=["yes", "no"]
        )
    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["pool"], "labels": ["labels"]},
        outputs={"model": ["clf"]},
        params={"cv_folds": 3, "find_label_errors": find_label_errors},
    )
    return project


def test_the_step_marks_the_flipped_labels_and_the_review_queue_shows_them_first(tmp_path):
    project = make_separable_project(tmp_path / "p")
    project.config.scenarios["check"] = ScenarioEntry(
        trigger=TriggerEntry(type="manual"),
        steps=[
            StepEntry(type="train-model"),
            StepEntry(type="label-errors", params={"cv_folds": 3}),
        ],
    )
    project.save()
    record = ScenarioRunner(project, project.connect).run("check")
    assert record.status == "succeeded", record.error
    found = record.steps[1]["result"]
    assert found["labels_scored"] == 300 and found["version"] == "1"
    with project.connect() as con:
        suspects = con.execute(
            "SELECT item_id, label, suggested FROM label_suspects ORDER BY rank"
        ).fetchall()
        assert {s[0] for s in suspects} == set(FLIPPED)  # all of them, and only them
        assert all(s[1] != s[2] for s in suspects)
        service = LabelingService(project, con)
        try:
            desk = ReviewDesk(service)
            queue = desk.next_items("rev", count=10)
            assert [c["item_id"] for c in queue["items"]] == [s[0] for s in suspects]
            assert queue["items"][0]["suspect"]["suggested"] == suspects[0][2]
            first, second, third = (c for c in queue["items"][:3])
            desk.decide("rev", first["item_id"], "correct", label=first["suspect"]["suggested"])
            desk.decide("rev", second["item_id"], "accept")
            desk.decide("rev", third["item_id"], "send_back", comment="look again")
            outcome = suspect_outcomes(con, "pool").iloc[0].to_dict()
            assert desk.next_items("rev", count=10)["totals"]["suspect"] == 2
        finally:
            service.hints.close()
    assert {k: outcome[k] for k in ("suspects", "confirmed", "accepted", "sent_back", "open")} == {
        "suspects": 5,
        "confirmed": 1,
        "accepted": 1,
        "sent_back": 1,
        "open": 2,
    }
    # Each run scores the version it trained (the option's test: a version once only).
    again = ScenarioRunner(project, project.connect).run("check")
    assert again.steps[1]["result"]["scored_before"] is False
    with project.connect() as con:
        runs = con.execute("SELECT model_version FROM label_error_runs ORDER BY 1").fetchall()
    assert runs == [("1",), ("2",)]


def test_the_train_model_option_scores_each_new_version(tmp_path):
    project = make_separable_project(tmp_path / "p", find_label_errors=True)
    run_recipe(project, "train", progress=False)
    with project.connect() as con:
        run = con.execute(
            "SELECT model_version, n_labels, n_suspects, cv_folds FROM label_error_runs"
        ).fetchall()
        assert run == [("1", 300, 5, 3)]
        again = find_label_errors(con, project, dataset="pool", model="clf")
    assert again.scored_before and again.n_suspects == 5


def test_a_corrected_suspect_trains_the_next_version_on_the_reviewers_label(tmp_path):
    project = make_separable_project(tmp_path / "p", find_label_errors=True)
    run_recipe(project, "train", progress=False)
    with project.connect() as con:
        service = LabelingService(project, con)
        try:
            desk = ReviewDesk(service)
            for card in desk.next_items("rev", count=10)["items"]:
                desk.decide("rev", card["item_id"], "correct", label=card["suspect"]["suggested"])
        finally:
            service.hints.close()
        from active_labeling.flow.labeled_data import labeled_frame
        from active_labeling.store.consensus import ConsensusRule

        _, y = labeled_frame(con, "pool", ["x"], ConsensusRule.of(project.settings))
        truth = dict(
            con.execute(
                "SELECT item_id, CASE WHEN x > 0 THEN 'yes' ELSE 'no' END FROM dataset_pool"
            ).fetchall()
        )
    assert all(y[i] == truth[i] for i in FLIPPED)


def test_bad_requests_are_refused_by_name(tmp_path):
    project = make_separable_project(tmp_path / "p")
    with project.connect() as con, pytest.raises(InputError, match="no saved model named 'clf'"):
        find_label_errors(con, project, dataset="pool", model="clf")
    project.config.project.multi_label = True
    with project.connect() as con, pytest.raises(InputError, match="multi-label"):
        find_label_errors(con, project, dataset="pool", model="clf")
    project.config.scenarios["bad"] = ScenarioEntry(
        steps=[StepEntry(type="label-errors", params={"recipe": "nope", "cv_folds": 1})]
    )
    project.save()
    record = ScenarioRunner(project, project.connect).run("bad")
    assert record.status == "failed" and "cv_folds" in record.error
