"""Per-labeler quality in the monitoring rows, in `monitor` and on the dashboard; and the
labels each version saw are the decided ones (reviews over labels, consensus over ties)."""

from __future__ import annotations

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from loop_helpers import label, make_blobs_project

from active_labeling.cli import main
from active_labeling.flow.monitoring import MonitoringParams, metric_history, monitor
from active_labeling.flow.train_model import TrainModelParams, train_model
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.labeling.dashboard import PANELS, draw
from active_labeling.metrics.labeler_quality import labeler_scores, pair_kappas
from active_labeling.store.labels import LabelEvent, append_events


@pytest.fixture
def measured(tmp_path):
    """ann labels 40 items right; bob labels the first 20 again, 5 of them wrong; rev
    corrects 3 of bob's wrong ones (ties) and accepts 2 of ann's labels; one version."""
    project, oracle = make_blobs_project(tmp_path / "p", n=120)
    ids = list(oracle)
    with project.connect() as con:
        label(con, oracle, ids[:40], annotator="ann")
        label(con, oracle, ids[5:20], annotator="bob")
        label(con, oracle, ids[:5], annotator="bob", wrong=True)
        append_events(
            con,
            [
                *(
                    LabelEvent("pool", i, "labeled", "rev", label=oracle[i], review="corrected")
                    for i in ids[:3]
                ),
                *(
                    LabelEvent("pool", i, "labeled", "rev", label=oracle[i], review="accepted")
                    for i in ids[30:32]
                ),
            ],
        )
        train_model(con, project, dataset="pool", model="clf", params=TrainModelParams(cv_folds=3))
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
        history = metric_history(con)
    return project, oracle, ids, history


def _by(history, metric, key):
    rows = history[history["metric"] == metric]
    return {d[key]: (v, d) for v, d in zip(rows["value"], rows["details"], strict=True)}


def test_each_labeler_is_measured_against_the_consensus_and_the_reviewers(measured):
    _, _, _, history = measured
    consensus = _by(history, "labeler_consensus_agreement", "annotator")
    # 20 items labeled twice; bob and ann split on 5 (ties: no consensus, a disagreement
    # for both), agree on 15.
    assert consensus["ann"][0] == pytest.approx(15 / 20) and consensus["ann"][1]["n_items"] == 20
    assert consensus["bob"][0] == pytest.approx(15 / 20)
    reviewed = _by(history, "labeler_review_agreement", "annotator")
    # rev decided 5 items: 3 where ann was right and bob wrong, 2 of ann's alone.
    assert reviewed["ann"] == (pytest.approx(1.0), {"annotator": "ann", "n_items": 5})
    assert reviewed["bob"] == (pytest.approx(0.0), {"annotator": "bob", "n_items": 3})
    pairs = _by(history, "labeler_pair_kappa", "annotators")
    value, details = pairs["ann & bob"]
    assert details["n_items"] == 20 and details["agreement"] == pytest.approx(0.75)
    assert -1 < value < 1
    # Reviewers' decisions are no labeler's work: no pace, no kappa for rev.
    pace = _by(history, "labels_per_hour", "annotator")
    assert set(pace) <= {"ann", "bob"} and "rev" not in consensus
    kappa = history[history["metric"] == "labeler_kappa"]
    assert kappa["details"].item()["n_annotators"] == 2


def test_a_version_is_measured_on_the_decided_labels(measured):
    _, _, _, history = measured
    # 40 items: 3 ties decided by rev, 2 ties left disputed (out of training), 35 others.
    n_labels = history[history["metric"] == "class_share"]["n_labels"].unique().tolist()
    assert n_labels == [38]


def test_monitor_and_the_dashboard_show_the_label_quality(measured, capsys):
    project, _, _, history = measured
    assert main(["monitor", str(project.root)]) == 0
    out = capsys.readouterr().out
    assert "labelers (newest model version):" in out and "kappa per pair of labelers:" in out
    assert "ann & bob" in out and "review decisions: accepted 2, corrected 3" in out
    with project.connect() as con:
        password = add_user(con, "rita", "reviewer")
    client = TestClient(create_app(project.root))
    token = client.post("/api/login", json={"username": "rita", "password": password})
    client.headers["X-CSRF-Token"] = token.json()["csrf_token"]
    quality = client.get("/api/dashboard").json()["label_quality"]
    labelers = {row["annotator"]: row for row in quality["labelers"]}
    assert labelers["bob"]["review_agreement"] == 0.0 and labelers["bob"]["reviewed_items"] == 3
    assert quality["pairs"][0]["annotators"] == "ann & bob"
    assert quality["decisions"] == {"accepted": 2, "corrected": 3}
    assert quality["review_queue"]["disagreement"] == 2
    assert draw(PANELS["labelers"], history, "svg").startswith(b"<?xml")


def test_labeler_scores_and_pair_kappas_on_a_hand_made_case():
    votes = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "c"],
            "annotator": ["x", "y", "z", "x", "y", "x"],
            "label": ["cat", "cat", "dog", "dog", "dog", "cat"],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "label": ["cat", "cat", "cat"],
            "consensus_label": ["cat", "dog", None],
            "n_labels": [3, 2, 1],
            "review": [None, "corrected", None],
        }
    )
    scores = labeler_scores(votes, items).set_index("annotator")
    assert scores.loc["x", "consensus_agreement"] == 1.0 and scores.loc["z", "consensus_items"] == 1
    assert scores.loc["z", "consensus_agreement"] == 0.0
    assert scores.loc["x", "review_agreement"] == 0.0 and scores.loc["z", "reviewed_items"] == 0
    pairs = pair_kappas(votes).set_index(["annotator_a", "annotator_b"])
    assert pairs.loc[("x", "y"), "n_items"] == 2 and pairs.loc[("x", "y"), "agreement"] == 1.0
    assert ("y", "z") in pairs.index and pairs.loc[("x", "z"), "n_items"] == 1
