"""Review of spans, boxes and audio items: labelers agree on identical lists only, the review
card carries each labeler's list, a correction is checked as a labeler's label is, and the
exports take what the review decided (store.consensus, labeling.review, exports.source)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from active_labeling.exports import export_labels_as
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.store.consensus import ConsensusRule, canonical_annotation, decide
from active_labeling.store.labels import LabelEvent, append_events

from media_helpers import TEXTS, folder_project, spans_of, spans_project

ADA = spans_of(TEXTS[0][1])  # t0: PER Ada Lovelace, PER Charles Babbage, LOC London


def _events(rows) -> pd.DataFrame:
    """label_events rows of (item, annotator, label, review) for ``decide``."""
    return pd.DataFrame(
        {
            "event_id": range(1, len(rows) + 1),
            "item_id": [r[0] for r in rows],
            "label": [r[2] for r in rows],
            "status": ["labeled"] * len(rows),
            "annotator": [r[1] for r in rows],
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "comment": None,
            "review": [r[3] if len(r) > 3 else None for r in rows],
        }
    )


# --- what a vote is ----------------------------------------------------------------------------


def test_two_labelers_who_marked_the_same_spans_in_another_order_agree():
    rule = ConsensusRule(classes=("PER", "LOC"), task="spans")
    items = decide(
        _events([("t0", "ann", json.dumps(ADA)), ("t0", "bob", json.dumps(ADA[::-1]))]), rule
    ).items
    (row,) = items.itertuples()
    assert row.label_source == "consensus" and bool(row.unanimous)
    assert json.loads(row.label) == ADA


def test_spans_that_differ_by_one_token_or_one_class_are_disputed_and_give_no_label():
    rule = ConsensusRule(classes=("PER", "LOC"), task="spans")
    shorter = [dict(ADA[0], end=3), *ADA[1:]]  # "Ada", not "Ada Lovelace"
    relabeled = [*ADA[:2], dict(ADA[2], label="PER")]
    items = decide(
        _events(
            [
                ("t0", "ann", json.dumps(ADA)),
                ("t0", "bob", json.dumps(shorter)),
                ("t1", "ann", json.dumps(ADA)),
                ("t1", "bob", json.dumps(relabeled)),
            ]
        ),
        rule,
    ).items
    assert items["label_source"].tolist() == ["disputed", "disputed"]
    assert items["label"].isna().all()


def test_two_identical_lists_against_one_win_with_two_thirds_and_a_tie_waits_for_review():
    # consensus_tie = first breaks class ties by the class order; lists have no order.
    rule = ConsensusRule(classes=("PER", "LOC"), task="spans", tie="first")
    other = json.dumps(ADA[:1])
    items = decide(
        _events(
            [
                ("t0", "ann", json.dumps(ADA)),
                ("t0", "bob", other),
                ("t0", "cy", json.dumps(ADA[::-1])),
                ("t1", "ann", json.dumps(ADA)),
                ("t1", "bob", other),
            ]
        ),
        rule,
    ).items.set_index("item_id")
    assert json.loads(items.loc["t0", "label"]) == ADA
    assert items.loc["t0", "consensus_confidence"] == pytest.approx(2 / 3)
    assert items.loc["t1", "label_source"] == "disputed"


def test_boxes_agree_whatever_order_they_were_drawn_in_and_10_is_10_0():
    a = [
        {"x": 1, "y": 2, "w": 10, "h": 10, "label": "cat"},
        {"x": 30, "y": 2, "w": 5, "h": 5, "label": "dog"},
    ]
    b = [dict(a[1]), dict(a[0], w=10.0)]
    assert canonical_annotation(json.dumps(a), "boxes") == canonical_annotation(
        json.dumps(b), "boxes"
    )
    rule = ConsensusRule(classes=("cat", "dog"), task="boxes")
    items = decide(
        _events([("i1", "ann", json.dumps(a)), ("i1", "bob", json.dumps(b))]), rule
    ).items
    assert items["label_source"].tolist() == ["consensus"]
    assert json.loads(items["label"][0]) == json.loads(canonical_annotation(json.dumps(a), "boxes"))


CAT = {"x": 10, "y": 10, "w": 40, "h": 30, "label": "cat"}
DOG = {"x": 70, "y": 12, "w": 20, "h": 20, "label": "dog"}


def _boxes(rows, **rule):
    rule = ConsensusRule(classes=("cat", "dog"), task="boxes", **rule)
    return decide(_events([(item, who, json.dumps(boxes)) for item, who, boxes in rows]), rule)


def test_boxes_drawn_a_few_pixels_apart_agree_and_give_their_mean():
    # Nobody draws the same pixels twice: boxes of one class overlapping by IoU >= 0.5 are
    # the same object, and the lists that pair up so agree, whatever their order.
    nudged = [dict(DOG, x=72), dict(CAT, x=12, w=38)]  # IoU 0.82 and 0.95
    decided = _boxes([("i1", "ann", [CAT, DOG]), ("i1", "bob", nudged)])
    (row,) = decided.items.itertuples()
    assert row.label_source == "consensus" and bool(row.unanimous)
    assert json.loads(row.label) == [
        {"x": 11.0, "y": 10.0, "w": 39.0, "h": 30.0, "label": "cat"},
        {"x": 71.0, "y": 12.0, "w": 20.0, "h": 20.0, "label": "dog"},
    ]
    # Each labeler's own list is kept, for the review card and the export's raw_labels.
    drawn = dict(zip(decided.votes["annotator"], decided.votes["drawn"], strict=True))
    assert json.loads(drawn["bob"])[1]["x"] == 72
    assert json.loads(row.raw_labels)["bob"] == drawn["bob"]


@pytest.mark.parametrize(
    "other, why",
    [
        ([CAT, dict(DOG, label="cat")], "a box of another class"),
        ([CAT, dict(DOG, x=82)], "IoU 0.25: another object"),
        ([CAT], "a box missing"),
        ([CAT, DOG, dict(DOG, x=0, y=0)], "a box more"),
    ],
)
def test_boxes_that_do_not_pair_up_are_disputed(other, why):
    decided = _boxes([("i1", "ann", [CAT, DOG]), ("i1", "bob", other)])
    assert decided.items["label_source"].tolist() == ["disputed"], why


def test_two_agreeing_lists_outvote_a_third_and_a_stricter_iou_splits_them():
    nudged = [dict(CAT, x=16), DOG]  # the cat box: IoU 0.74
    rows = [("i1", "ann", [CAT, DOG]), ("i1", "bob", nudged), ("i1", "cy", [DOG])]
    items = _boxes(rows).items
    assert items["label_source"].tolist() == ["consensus"]
    assert items["consensus_confidence"][0] == pytest.approx(2 / 3)
    assert json.loads(items["label"][0])[0]["x"] == 13.0
    strict = _boxes(rows, box_iou=0.8).items
    assert strict["label_source"].tolist() == ["disputed"]


def test_dawid_skene_projects_vote_whole_lists_for_spans():
    # Dawid-Skene weighs labelers over classes; a spans dataset takes the list majority.
    rule = ConsensusRule(method="dawid_skene", classes=("PER", "LOC"), task="spans")
    assert rule.method_used == "identical"
    items = decide(
        _events([("t0", "ann", json.dumps(ADA)), ("t0", "bob", json.dumps(ADA[::-1]))]), rule
    ).items
    assert items["label_source"].tolist() == ["consensus"]


# --- the review queue and its decisions ------------------------------------------------------


def _client(app, name, password):
    client = TestClient(app)
    answer = client.post("/api/login", json={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _reviewer(project):
    with project.connect() as con:
        password = add_user(con, "rev", "reviewer")
    app = create_app(project.root)
    return _client(app, "rev", password)


def _label(project, dataset, rows) -> None:
    """(item, annotator, value) events, a value not a string encoded as JSON."""
    with project.connect() as con:
        append_events(
            con,
            [
                LabelEvent(
                    dataset,
                    item,
                    "labeled",
                    who,
                    label=value if isinstance(value, str) else json.dumps(value),
                )
                for item, who, value in rows
            ],
        )


def _log(client):
    cursor = client.app.state.service.cursor_for_command()
    try:
        return cursor.execute("SELECT * FROM label_events ORDER BY event_id").fetchall()
    finally:
        cursor.close()


def _export(client, project, dataset, fmt, path):
    """An export on the store the app has open (as `labels export` while it serves)."""
    cursor = client.app.state.service.cursor_for_command()
    try:
        return export_labels_as(cursor, project, dataset, fmt, path)
    finally:
        cursor.close()


def _spacy_rows(path):
    return {row["id"]: row["spans"] for row in map(json.loads, path.read_text().splitlines())}


@pytest.fixture
def spans(tmp_path):
    """t0: ann and bob marked different spans; t1: both marked the same ones."""
    project = spans_project(tmp_path / "p")
    _label(
        project,
        "texts",
        [
            ("t0", "ann", ADA),
            ("t0", "bob", ADA[:2]),  # bob missed London
            ("t1", "ann", spans_of(TEXTS[1][1])),
            ("t1", "bob", spans_of(TEXTS[1][1])[::-1]),
        ],
    )
    return project, _reviewer(project)


def test_a_spans_review_card_has_the_text_tokens_and_each_labelers_spans(spans):
    _, rev = spans
    (card,) = rev.get("/api/review/next").json()["items"]
    assert card["item_id"] == "t0" and card["reasons"] == ["disagreement"]
    assert card["text"] == TEXTS[0][0] and card["tokens"][0] == [0, 3]
    assert {v["annotator"]: v["spans"] for v in card["labels"]} == {"ann": ADA, "bob": ADA[:2]}
    assert card["proposed_label"] is None and card["spans"] is None  # nothing to accept
    assert card["consensus"]["method"] == "identical"


def test_a_reviewer_corrects_spans_and_the_exports_take_the_correction(spans, tmp_path):
    project, rev = spans
    before = _export(rev, project, "texts", "spacy-jsonl", tmp_path / "before.jsonl").path
    assert set(_spacy_rows(before)) == {"t1"}  # t0 is disputed: left out, as training leaves it
    (card,) = rev.get("/api/review/next").json()["items"]
    answer = rev.post(
        "/api/review/items/t0/correct",
        json={"spans": ADA[::-1], "seen_event_id": card["seen_event_id"]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["review"] == "corrected"
    after = _spacy_rows(
        _export(rev, project, "texts", "spacy-jsonl", tmp_path / "after.jsonl").path
    )
    assert [(s["start"], s["end"], s["label"]) for s in after["t0"]] == [
        (s["start"], s["end"], s["label"]) for s in ADA
    ]
    table = _export(rev, project, "texts", "csv", tmp_path / "labels.csv").path
    frame = pd.read_csv(table).set_index("item_id")
    assert frame.loc["t0", "label_source"] == "review"
    assert json.loads(frame.loc["t0", "label"]) == ADA
    assert rev.get("/api/review/next").json()["done"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"spans": [{"start": 0, "end": 5, "label": "PER"}]}, "spans[0].end"),
        ({"spans": [{"start": 0, "end": 3, "label": "ORG"}]}, "spans[0].label"),
        ({"label": "PER"}, "send 'spans'"),
        ({}, "send 'spans'"),
    ],
)
def test_a_correction_off_the_tokens_is_a_422_naming_the_field_and_writes_nothing(
    spans, body, field
):
    _, rev = spans
    (card,) = rev.get("/api/review/next").json()["items"]
    before = _log(rev)
    answer = rev.post(
        "/api/review/items/t0/correct", json={**body, "seen_event_id": card["seen_event_id"]}
    )
    assert answer.status_code == 422 and field in answer.text, answer.text
    assert _log(rev) == before


def test_correcting_to_the_spans_the_item_has_is_an_accept(tmp_path):
    project = spans_project(tmp_path / "p")
    project.config.project.review_sample = 1.0  # a spot check of every item labeled once
    project.save()
    _label(project, "texts", [("t1", "ann", spans_of(TEXTS[1][1]))])
    rev = _reviewer(project)
    (card,) = rev.get("/api/review/next").json()["items"]
    assert card["reasons"] == ["sample"] and card["spans"] == spans_of(TEXTS[1][1])
    answer = rev.post(
        "/api/review/items/t1/correct",
        json={"spans": spans_of(TEXTS[1][1])[::-1], "seen_event_id": card["seen_event_id"]},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["review"] == "accepted"


@pytest.fixture
def boxes(tmp_path):
    """sub/img0.png (64x48): ann and bob drew different boxes."""
    project = folder_project(tmp_path / "b", "boxes")
    _label(
        project,
        "media",
        [
            ("sub/img0.png", "ann", [{"x": 1, "y": 1, "w": 20, "h": 20, "label": "cat"}]),
            ("sub/img0.png", "bob", [{"x": 1, "y": 1, "w": 20, "h": 20, "label": "dog"}]),
        ],
    )
    return project, _reviewer(project)


def test_a_boxes_review_card_draws_on_the_image_and_a_correction_reaches_coco(boxes, tmp_path):
    project, rev = boxes
    (card,) = rev.get("/api/review/next").json()["items"]
    assert card["item_id"] == "sub/img0.png"
    assert card["image"]["width"] == 64 and card["image"]["height"] == 48
    assert [v["boxes"][0]["label"] for v in card["labels"]] == ["cat", "dog"]
    box = {"x": 2, "y": 3, "w": 30, "h": 25, "label": "dog"}
    answer = rev.post(
        "/api/review/items/sub/img0.png/correct",
        json={"boxes": [box], "seen_event_id": card["seen_event_id"]},
    )
    assert answer.status_code == 200, answer.text
    coco = json.loads(
        _export(rev, project, "media", "coco", tmp_path / "coco.json").path.read_text()
    )
    (annotation,) = coco["annotations"]
    assert annotation["bbox"] == [2, 3, 30, 25]
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert names[annotation["category_id"]] == "dog"


@pytest.mark.parametrize(
    "box, field",
    [
        ({"x": 50, "y": 1, "w": 20, "h": 20, "label": "cat"}, "boxes[0]"),  # past the width 64
        ({"x": 1, "y": 1, "w": 0, "h": 20, "label": "cat"}, "boxes[0]"),
        ({"x": 1, "y": 1, "w": 5, "h": 5, "label": "cow"}, "boxes[0].label"),
    ],
)
def test_a_box_correction_outside_the_image_is_a_422_and_writes_nothing(boxes, box, field):
    _, rev = boxes
    (card,) = rev.get("/api/review/next").json()["items"]
    before = _log(rev)
    answer = rev.post(
        "/api/review/items/sub/img0.png/correct",
        json={"boxes": [box], "seen_event_id": card["seen_event_id"]},
    )
    assert answer.status_code == 422 and field in answer.text, answer.text
    assert _log(rev) == before


def test_an_audio_item_is_reviewed_as_a_class(tmp_path):
    project = folder_project(tmp_path / "a", "audio")
    _label(project, "media", [("clip0.wav", "ann", "cat"), ("clip0.wav", "bob", "dog")])
    rev = _reviewer(project)
    (card,) = rev.get("/api/review/next").json()["items"]
    assert card["audio"].startswith("/media/") and card["reasons"] == ["disagreement"]
    assert "spans" not in card and "boxes" not in card
    answer = rev.post(
        "/api/review/items/clip0.wav/correct",
        json={"label": "dog", "seen_event_id": card["seen_event_id"]},
    )
    assert answer.status_code == 200, answer.text
    refused = rev.post(
        "/api/review/items/clip0.wav/correct", json={"spans": [], "seen_event_id": 0}
    )
    assert refused.status_code == 422
    frame = pd.read_csv(_export(rev, project, "media", "csv", tmp_path / "a.csv").path)
    assert frame.set_index("item_id").loc["clip0.wav", "label"] == "dog"


def test_likely_label_errors_are_refused_for_spans_by_name_before_a_model_is_fitted(tmp_path):
    from active_labeling.errors import InputError
    from active_labeling.flow.label_errors import find_label_errors
    from active_labeling.flow.train_model import TrainModelParams, train_model

    project = spans_project(tmp_path / "p")
    _label(project, "texts", [(f"t{i}", "ann", spans_of(t[1])) for i, t in enumerate(TEXTS)])
    with project.connect() as con:
        with pytest.raises(InputError, match="labeled with spans: likely label errors"):
            find_label_errors(con, project, dataset="texts", model="crf")
        with pytest.raises(InputError, match="labeled with spans"):
            train_model(
                con,
                project,
                dataset="texts",
                model="crf",
                params=TrainModelParams(find_label_errors=True),
            )
    assert not list(project.models_dir.glob("crf/*"))  # nothing fitted, nothing saved


def test_the_mean_of_boxes_drawn_against_the_edge_stays_inside_the_image():
    from active_labeling.labeling.annotations import check_boxes

    # x + w averaged apart and rounded was 10.1 + 90.0: past the 100-pixel edge.
    a = [{"x": 10.1, "y": 0, "w": 89.9, "h": 10, "label": "cat"}]
    b = [{"x": 10.0, "y": 0, "w": 90.0, "h": 10, "label": "cat"}]
    (label,) = _boxes([("i1", "ann", a), ("i1", "bob", b)]).items["label"]
    (box,) = check_boxes(json.loads(label), 100, 100, ["cat"])
    assert box["x"] + box["w"] <= 100


def test_a_list_between_two_that_disagree_does_not_make_them_agree_in_any_order():
    a = [dict(CAT, x=0, w=10, h=10)]
    b = [dict(CAT, x=3, w=10, h=10)]  # IoU 0.54 with a and with c
    c = [dict(CAT, x=6, w=10, h=10)]  # IoU 0.25 with a
    for order in ([a, b, c], [b, a, c], [a, c, b], [c, b, a]):
        rows = [("i1", who, boxes) for who, boxes in zip(("ann", "bob", "cy"), order, strict=True)]
        (row,) = _boxes(rows).items.itertuples()
        assert row.consensus_confidence == pytest.approx(2 / 3) and not row.unanimous


def test_lists_pair_up_when_some_pairing_holds_every_pair_at_the_threshold():
    # The pairing of the highest total IoU holds a pair of 0.42; the other one pairs all
    # boxes at 0.51 and 0.54.
    a = [
        {"x": 6, "y": 18, "w": 22, "h": 9, "label": "cat"},
        {"x": 10, "y": 14, "w": 20, "h": 14, "label": "cat"},
    ]
    b = [
        {"x": 7, "y": 8, "w": 19, "h": 20, "label": "cat"},
        {"x": 6, "y": 14, "w": 23, "h": 16, "label": "cat"},
    ]
    items = _boxes([("i1", "ann", a), ("i1", "bob", b)]).items
    assert items["label_source"].tolist() == ["consensus"]
