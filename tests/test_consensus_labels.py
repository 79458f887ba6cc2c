"""The label each item ends up with: reviewers' decisions, consensus between labelers, and
what training, the query sampler and exports read (store.consensus)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.flow.labeled_data import labeled_frame
from active_labeling.flow.project import Project
from active_labeling.store import connect, datasets, item_state, labels
from active_labeling.store.consensus import ConsensusRule, decided_labels
from active_labeling.store.labels import LabelEvent

from flow_helpers import write_pool_csv

RULE = ConsensusRule(classes=("yes", "no"))


@pytest.fixture
def con(tmp_path):
    con = connect(tmp_path / "store.duckdb")
    datasets.import_file(con, "pool", write_pool_csv(tmp_path / "p.csv", 20), id_column="id")
    yield con
    con.close()


def _state(con, item):
    return con.execute(
        "SELECT status, label, annotator FROM item_state WHERE item_id = ?", [item]
    ).fetchone()


def _decided(con, rule=RULE) -> pd.DataFrame:
    return decided_labels(con, "pool", rule).items.set_index("item_id")


def test_a_reviewers_decision_is_the_items_state_and_stays_final(con):
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I1", "labeled", "rev", label="no", review="corrected"),
            # A labeler's action after the decision stays in the log and changes nothing.
            LabelEvent("pool", "I1", "labeled", "bob", label="yes"),
            LabelEvent("pool", "I1", "undone", "bob"),
        ],
    )
    assert _state(con, "I1") == ("reviewed", "no", "rev")
    assert labels.current_labels(con, "pool").to_dict("records") == [
        {"item_id": "I1", "label": "no"}
    ]
    row = _decided(con).loc["I1"]
    assert (row["label"], row["label_source"], row["review"], row["reviewer"]) == (
        "no",
        "review",
        "corrected",
        "rev",
    )
    assert json.loads(row["raw_labels"]) == {"ann": "yes"}  # the labeler's label is kept
    before = con.execute("SELECT * FROM item_state ORDER BY item_id").fetchall()
    item_state.rebuild(con)
    assert con.execute("SELECT * FROM item_state ORDER BY item_id").fetchall() == before
    assert con.execute("SELECT count(*) FROM label_events").fetchone()[0] == 4


def test_a_label_import_leaves_a_reviewed_item_to_its_reviewer(con, tmp_path):
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I1", "labeled", "rev", label="yes", review="accepted"),
        ],
    )
    path = tmp_path / "more.csv"
    path.write_text("id,label\nI1,no\nI2,no\n", encoding="utf-8")
    labels.import_labels(con, "pool", path, classes=["yes", "no"])
    assert _state(con, "I1") == ("reviewed", "yes", "rev")
    assert _state(con, "I2") == ("labeled", "no", "import")


def test_a_send_back_sets_the_labels_aside_and_frees_the_item(con):
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I2", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I2", "labeled", "bob", label="no"),
            LabelEvent("pool", "I2", "undone", "rev", review="sent_back", comment="again"),
        ],
    )
    assert _state(con, "I2")[0] == "undone"
    touched = {r[0] for r in con.execute("SELECT item_id FROM touched_items").fetchall()}
    assert "I2" not in touched and "I2" not in _decided(con).index
    # Labeled again after it: that label alone counts, and the labels sent back still count
    # as work done (not taken back).
    labels.append_events(con, [LabelEvent("pool", "I2", "labeled", "cy", label="no")])
    row = _decided(con).loc["I2"]
    assert (row["label"], row["n_labels"], row["label_source"]) == ("no", 1, "labeler")
    assert item_state.taken_back(con, "pool") == []


def test_items_labeled_twice_get_a_consensus_and_a_tie_waits_for_review(con, tmp_path):
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I1", "labeled", "bob", label="no"),  # a tie
            LabelEvent("pool", "I3", "labeled", "ann", label="no"),
            LabelEvent("pool", "I3", "labeled", "bob", label="yes"),
            LabelEvent("pool", "I3", "labeled", "cy", label="yes"),  # 2 against 1
            LabelEvent("pool", "I4", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I4", "skipped", "bob"),  # a skip is no vote
        ],
    )
    items = _decided(con)
    assert items.loc["I1", "label"] is None and items.loc["I1", "label_source"] == "disputed"
    assert (items.loc["I3", "label"], items.loc["I3", "label_source"]) == ("yes", "consensus")
    assert items.loc["I3", "consensus_confidence"] == pytest.approx(2 / 3)
    assert (items.loc["I4", "label"], items.loc["I4", "n_labels"]) == ("yes", 1)
    frame, y = labeled_frame(con, "pool", ["age"], RULE)
    assert y.to_dict() == {"I3": "yes", "I4": "yes"}  # the tie is left out of training
    assert list(frame.index) == ["I3", "I4"]
    first = ConsensusRule(tie="first", classes=("no", "yes"))
    assert _decided(con, first).loc["I1", "label"] == "no"  # first in the project's order
    strict = ConsensusRule(threshold=0.7, classes=("yes", "no"))
    assert _decided(con, strict).loc["I3", "label"] is None  # 2/3 is under 0.7


def test_dawid_skene_weighs_the_labelers_by_their_estimated_accuracy(con):
    # ann is always right, bob wrong on two items, cy always wrong: where bob sides with cy,
    # the majority follows them, Dawid-Skene follows ann, whom it trusts most.
    events = []
    for i in range(12):
        truth = "yes" if i % 2 else "no"
        other = "no" if truth == "yes" else "yes"
        bob = other if i in (3, 5) else truth
        events += [
            LabelEvent("pool", f"I{i}", "labeled", "ann", label=truth),
            LabelEvent("pool", f"I{i}", "labeled", "bob", label=bob),
            LabelEvent("pool", f"I{i}", "labeled", "cy", label=other),
        ]
    labels.append_events(con, events)
    majority = _decided(con)
    dawid_skene = decided_labels(
        con, "pool", ConsensusRule(method="dawid_skene", classes=RULE.classes)
    )
    ds = dawid_skene.items.set_index("item_id")
    assert majority.loc["I3", "label"] == "no" and ds.loc["I3", "label"] == "yes"
    accuracy = dawid_skene.labelers.set_index("annotator")["accuracy"]
    assert accuracy["ann"] > accuracy["bob"] > accuracy["cy"]


def test_multi_label_items_take_the_majority_per_class(con):
    rule = ConsensusRule(classes=("red", "blue"), multi_label=True)
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I1", "labeled", "ann", label='["red"]'),
            LabelEvent("pool", "I1", "labeled", "bob", label='["red", "blue"]'),
            LabelEvent("pool", "I1", "labeled", "cy", label='["red"]'),
        ],
    )
    row = _decided(con, rule).loc["I1"]
    assert json.loads(row["label"]) == ["red"] and not row["unanimous"]
    with pytest.raises(InputError, match="dawid_skene' is single-label"):
        ConsensusRule(method="dawid_skene", multi_label=True)


def test_the_export_carries_the_consensus_its_confidence_the_raw_labels_and_the_review(
    con, tmp_path
):
    labels.append_events(
        con,
        [
            LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I1", "labeled", "bob", label="yes"),
            LabelEvent("pool", "I2", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I2", "labeled", "bob", label="no"),
            LabelEvent("pool", "I3", "labeled", "ann", label="yes"),
            LabelEvent("pool", "I3", "labeled", "rev", label="no", review="corrected", comment="c"),
        ],
    )
    for name in ("out.csv", "out.parquet"):
        path = labels.export_labels(con, "pool", tmp_path / name, RULE)
        out = (pd.read_csv if name.endswith("csv") else pd.read_parquet)(path)
        out = out.set_index("item_id")
        assert list(out.columns) == list(labels.LABEL_EXPORT_COLUMNS[1:])
        assert out.loc["I1", ["label", "label_source", "consensus_label"]].tolist() == [
            "yes",
            "consensus",
            "yes",
        ]
        assert out.loc["I1", "consensus_confidence"] == 1.0
        assert pd.isna(out.loc["I2", "label"]) and out.loc["I2", "label_source"] == "disputed"
        assert json.loads(out.loc["I2", "raw_labels"]) == {"ann": "yes", "bob": "no"}
        assert out.loc["I3", ["label", "review", "reviewer", "annotator", "comment"]].tolist() == [
            "no",
            "corrected",
            "rev",
            "rev",
            "c",
        ]


def test_a_store_written_before_reviews_is_read_and_exported_read_only(tmp_path):
    project = Project.init(tmp_path / "p", classes=["yes", "no"], id_column="id")
    with project.connect() as con:
        info = datasets.import_file(
            con, "pool", write_pool_csv(tmp_path / "p.csv", 10), id_column="id"
        )
        project.record_dataset(info)
        labels.append_events(con, [LabelEvent("pool", "I1", "labeled", "ann", label="yes")])
        # What a store of schema 2 looks like: no review column.
        con.execute("ALTER TABLE label_events DROP COLUMN review")
        con.execute("UPDATE store_meta SET value = '2' WHERE key = 'schema_version'")
    with project.connect(read_only=True) as con:
        out = pd.read_csv(labels.export_labels(con, "pool", tmp_path / "l.csv", RULE))
        events = pd.read_csv(labels.export_events(con, "pool", tmp_path / "e.csv"))
    assert out[["item_id", "label", "label_source"]].values.tolist() == [["I1", "yes", "labeler"]]
    assert events["review"].isna().all()
    with project.connect() as con:  # opened for writing: migrated
        assert con.execute("SELECT count(review) FROM label_events").fetchone() == (0,)


def test_bad_review_events_are_refused_and_nothing_is_written(con):
    with pytest.raises(InputError, match="review must be one of"):
        labels.append_events(
            con, [LabelEvent("pool", "I1", "labeled", "rev", label="no", review="sent_back")]
        )
    with pytest.raises(InputError, match="review must be one of"):
        labels.append_events(con, [LabelEvent("pool", "I1", "skipped", "rev", review="maybe")])
    assert con.execute("SELECT count(*) FROM label_events").fetchone() == (0,)


def test_labels_export_and_training_follow_the_projects_consensus_settings(tmp_path):
    from active_labeling.cli import main

    project = Project.init(tmp_path / "p", classes=["no", "yes"], id_column="id")
    project.config.project.consensus_tie = "first"
    project.save()
    with project.connect() as con:
        info = datasets.import_file(
            con, "pool", write_pool_csv(tmp_path / "p.csv", 10), id_column="id"
        )
        project.record_dataset(info)
        labels.append_events(
            con,
            [
                LabelEvent("pool", "I1", "labeled", "ann", label="yes"),
                LabelEvent("pool", "I1", "labeled", "bob", label="no"),
            ],
        )
    assert main(["labels", "export", str(project.root), str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert out[["item_id", "label", "label_source"]].values.tolist() == [["I1", "no", "consensus"]]
