"""Spans, boxes and audio: what the API takes, what it refuses (naming the field), and that
undo, skip, back and leases work for them as for a class (labeling.annotations)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from active_labeling.errors import InputError
from active_labeling.labeling.annotations import check_boxes, check_spans, tokenize
from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user

from media_helpers import TEXTS, folder_project, spans_of, spans_project

TEXT = "Ada Lovelace met Charles Babbage in London ."


def _login(app, name, password):
    client = TestClient(app)
    answer = client.post("/api/login", json={"username": name, "password": password})
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


def _users(project):
    with project.connect() as con:
        return {name: add_user(con, name, "labeler") for name in ("ann", "bob")}


def _events(client):
    return _read(client, "SELECT item_id, status, label FROM label_events ORDER BY event_id")


def _read(client, query):
    cursor = client.app.state.service.cursor_for_command()
    try:
        return cursor.execute(query).fetchall()
    finally:
        cursor.close()


def _snapshot(client):
    """The label events, item states and leases: what a refused write must leave as is."""
    return [
        _read(client, f"SELECT * FROM {table} ORDER BY ALL")
        for table in ("label_events", "item_state", "leases")
    ]


# --- the checks ------------------------------------------------------------------------------


def test_tokens_keep_words_with_their_marks_and_punctuation_apart():
    text = "L'été, 2024! naïve"  # the last word with a combining diaeresis
    assert [text[s:e] for s, e in tokenize(text)] == ["L", "'", "été", ",", "2024", "!", "naïve"]
    assert tokenize("") == [] and tokenize("   ") == []


def test_spans_are_returned_in_text_order():
    spans = [{"start": 36, "end": 42, "label": "LOC"}, {"start": 0, "end": 12, "label": "PER"}]
    assert [s["start"] for s in check_spans(spans, TEXT, ["PER", "LOC"])] == [0, 36]


@pytest.mark.parametrize(
    "spans, message",
    [
        ([{"start": 0, "end": 99, "label": "PER"}], r"spans\[0\].end: 99 is beyond the text \(44"),
        (
            [{"start": 1, "end": 3, "label": "PER"}],
            r"spans\[0\].start: 1 is not where a token starts",
        ),
        (
            [{"start": 0, "end": 5, "label": "PER"}],
            r"spans\[0\].end: 5 is not where a token ends \(the nearest are 3 and 12\)",
        ),
        ([{"start": 4, "end": 4, "label": "PER"}], r"spans\[0\]: end \(4\) must be after start"),
        (
            [{"start": 0, "end": 3, "label": "ORG"}],
            r"spans\[0\].label: 'ORG' is not one of the classes",
        ),
        (
            [{"start": 0, "end": 12, "label": "PER"}, {"start": 4, "end": 16, "label": "PER"}],
            r"spans\[1\] \(4-16\) overlaps spans\[0\] \(0-12\)",
        ),
        ([{"start": -1, "end": 3, "label": "PER"}], r"spans\[0\].start: Input should be greater"),
        ([{"start": 0, "end": 3}], r"spans\[0\].label: Field required"),
    ],
)
def test_a_span_that_does_not_fit_the_text_is_refused_naming_it(spans, message):
    with pytest.raises(InputError, match=message):
        check_spans(spans, TEXT, ["PER", "LOC"])


@pytest.mark.parametrize(
    "box, message",
    [
        (
            {"x": 600, "y": 0, "w": 100, "h": 10},
            r"boxes\[0\]: x \+ w = 700 is outside the image \(width 640\)",
        ),
        (
            {"x": 0, "y": 400, "w": 10, "h": 100},
            r"boxes\[0\]: y \+ h = 500 is outside the image \(height 480\)",
        ),
        ({"x": -2, "y": 0, "w": 10, "h": 10}, r"boxes\[0\].x: -2 is outside the image"),
        ({"x": 10, "y": 10, "w": 0, "h": 10}, r"boxes\[0\]: zero area \(w = 0, h = 10\)"),
        ({"x": 10, "y": 10, "w": 5, "h": -1}, r"boxes\[0\]: zero area"),
    ],
)
def test_a_box_outside_the_image_or_of_zero_area_is_refused_naming_it(box, message):
    with pytest.raises(InputError, match=message):
        check_boxes([{**box, "label": "car"}], 640, 480, ["car"])
    with pytest.raises(InputError, match=r"boxes\[0\].label: 'bus' is not one of the classes"):
        check_boxes([{"x": 1, "y": 1, "w": 2, "h": 2, "label": "bus"}], 640, 480, ["car"])


# --- spans through the API -------------------------------------------------------------------


@pytest.fixture
def spans(tmp_path):
    project = spans_project(tmp_path / "p")
    users = _users(project)
    app = create_app(project.root)
    return project, app, _login(app, "ann", users["ann"]), _login(app, "bob", users["bob"])


def test_a_spans_item_comes_with_its_text_tokens_and_direction(spans):
    _, _, ann, _ = spans
    assert ann.get("/api/session").json()["project"]["task"] == "spans"
    item = ann.get("/api/items/next").json()["items"][0]
    assert item["item_id"] == "t0" and item["text"] == TEXT and item["direction"] == "ltr"
    assert [TEXT[s:e] for s, e in item["tokens"]][:3] == ["Ada", "Lovelace", "met"]
    assert "text" not in item["values"]  # shown once, as the text to mark


def test_spans_are_stored_as_one_event_with_the_json_list_and_undo_brings_the_item_back(spans):
    _, _, ann, _ = spans
    ann.get("/api/items/next")
    sent = spans_of(TEXTS[0][1])[::-1]  # in any order: stored in text order
    answer = ann.post("/api/items/t0/label", json={"spans": sent})
    assert answer.status_code == 200, answer.text
    ((_, status, label),) = _events(ann)
    assert status == "labeled" and json.loads(label) == spans_of(TEXTS[0][1])
    assert ann.get("/api/items/t0").json()["spans"] == spans_of(TEXTS[0][1])
    undone = ann.post("/api/undo").json()
    assert undone["item"]["item_id"] == "t0" and undone["item"]["spans"] is None
    assert ann.post("/api/items/t0/label", json={"spans": []}).status_code == 200  # nothing to mark
    assert ann.post("/api/items/t1/skip", json={"comment": "unsure"}).status_code == 200
    assert [e[1] for e in _events(ann)] == ["labeled", "undone", "labeled", "skipped"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"spans": [{"start": 0, "end": 99, "label": "PER"}]}, "spans[0].end"),
        ({"spans": [{"start": 1, "end": 3, "label": "PER"}]}, "spans[0].start"),
        (
            {
                "spans": [
                    {"start": 0, "end": 12, "label": "PER"},
                    {"start": 4, "end": 16, "label": "LOC"},
                ]
            },
            "overlaps",
        ),
        ({"spans": [{"start": 0, "end": 3, "label": "ORG"}]}, "spans[0].label"),
        ({"spans": [{"start": 0, "end": "x", "label": "PER"}]}, "body.spans.0.end"),
        ({"label": "PER"}, "send 'spans'"),
    ],
)
def test_a_bad_span_is_a_422_naming_the_field_and_stores_nothing(spans, body, field):
    _, _, ann, _ = spans
    ann.get("/api/items/next")
    before = _snapshot(ann)
    answer = ann.post("/api/items/t0/label", json=body)
    assert answer.status_code == 422 and field in answer.json()["detail"], answer.text
    assert _snapshot(ann) == before


def test_an_item_leased_to_someone_else_cannot_get_spans(spans):
    _, _, ann, bob = spans
    ann.get("/api/items/next")
    answer = bob.post("/api/items/t0/label", json={"spans": []})
    assert answer.status_code == 409


def test_earlier_spans_are_proposed_again_as_a_dictionary_prelabel(spans):
    _, _, ann, _ = spans
    ann.get("/api/items/next")
    ann.post("/api/items/t0/label", json={"spans": spans_of(TEXTS[0][1])})
    items = {i["item_id"]: i for i in ann.get("/api/items/next?count=5").json()["items"]}
    text = items["t2"]["text"]  # "Alan Turing was born in London ."
    assert [
        (text[s["start"] : s["end"]], s["label"]) for s in items["t2"]["prelabels"]["dictionary"]
    ] == [("London", "LOC")]
    assert items["t5"]["prelabels"]["dictionary"] == [{"start": 0, "end": 15, "label": "PER"}]
    assert items["t2"]["prelabels"]["model"] == []  # no model trained yet


def test_right_to_left_texts_say_so(tmp_path):
    project = spans_project(tmp_path / "p", texts=[("שלום עולם", []), ("مرحبا بالعالم", [])])
    password = _users(project)["ann"]
    client = _login(create_app(project.root), "ann", password)
    items = client.get("/api/items/next?count=2").json()["items"]
    assert [i["direction"] for i in items] == ["rtl", "rtl"]


def test_a_script_payload_in_the_text_is_returned_as_data(tmp_path):
    payload = '<img src=x onerror="alert(1)"> <script>alert(2)</script> Ada'
    project = spans_project(tmp_path / "p", texts=[(payload, [])])
    client = _login(create_app(project.root), "ann", _users(project)["ann"])
    answer = client.get("/api/items/next")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["items"][0]["text"] == payload


# --- boxes and audio -------------------------------------------------------------------------


@pytest.fixture
def boxes(tmp_path):
    project = folder_project(tmp_path / "p", "boxes")
    password = _users(project)["ann"]
    return project, _login(create_app(project.root), "ann", password)


def test_a_boxes_item_carries_its_image_and_size_and_boxes_are_stored_in_pixels(boxes):
    _, ann = boxes
    assert ann.get("/api/session").json()["project"]["task"] == "boxes"
    item = ann.get("/api/items/next").json()["items"][0]
    assert item["item_id"] == "img1.jpg"
    assert item["image"] == {"url": "/media/media/img1.jpg", "width": 81, "height": 60}
    box = {"x": 10.5, "y": 5, "w": 70.5, "h": 55, "label": "dog"}
    assert ann.post("/api/items/img1.jpg/label", json={"boxes": [box]}).status_code == 200
    assert json.loads(_events(ann)[0][2]) == [box]
    assert ann.get("/api/items/img1.jpg").json()["boxes"] == [box]


@pytest.mark.parametrize(
    "box, field",
    [
        (
            {"x": 10, "y": 5, "w": 80, "h": 10},
            "boxes[0]: x + w = 90 is outside the image (width 81)",
        ),
        ({"x": 10, "y": 5, "w": 0, "h": 10}, "boxes[0]: zero area"),
    ],
)
def test_a_bad_box_is_a_422_naming_it_and_stores_nothing(boxes, box, field):
    _, ann = boxes
    ann.get("/api/items/next")
    before = _snapshot(ann)
    answer = ann.post("/api/items/img1.jpg/label", json={"boxes": [{**box, "label": "cat"}]})
    assert answer.status_code == 422 and field in answer.json()["detail"], answer.text
    assert _snapshot(ann) == before


def test_boxes_on_a_csv_dataset_read_the_image_size_from_the_file(tmp_path):
    from active_labeling.flow.project import Project
    from active_labeling.store import datasets

    from media_helpers import png_bytes

    project = Project.init(tmp_path / "p", classes=["car"], task="boxes", media_column="image")
    (project.root / "media").mkdir()
    (project.root / "media" / "a.png").write_bytes(png_bytes(100, 50))
    (tmp_path / "rows.csv").write_text("id,image\nr1,a.png\n")
    with project.connect() as con:
        project.record_dataset(
            datasets.import_file(con, "rows", tmp_path / "rows.csv", id_column="id")
        )
    client = _login(create_app(project.root), "ann", _users(project)["ann"])
    assert client.get("/api/items/next").json()["items"][0]["image"]["width"] == 100
    bad = client.post(
        "/api/items/r1/label", json={"boxes": [{"x": 0, "y": 0, "w": 10, "h": 60, "label": "car"}]}
    )
    assert bad.status_code == 422 and "height 50" in bad.json()["detail"]


def test_an_audio_item_carries_its_sound_and_takes_a_class(tmp_path):
    project = folder_project(tmp_path / "p", "audio")
    client = _login(create_app(project.root), "ann", _users(project)["ann"])
    assert client.get("/api/session").json()["project"]["task"] == "audio"
    item = client.get("/api/items/next").json()["items"][0]
    assert item["audio"] == "/media/media/clip0.wav" and item["duration_s"] == pytest.approx(0.25)
    assert item["media"] == {}
    assert client.get(item["audio"]).content[:4] == b"RIFF"
    assert client.post("/api/items/clip0.wav/label", json={"label": "dog"}).status_code == 200
    refused = client.post("/api/items/clip1.wav/label", json={"boxes": []})
    assert refused.status_code == 422 and "send 'label'" in refused.json()["detail"]


def test_the_token_cache_holds_at_most_its_characters_least_recently_used_out_first():
    from active_labeling.labeling.annotations import _TokenCache, _tokens

    cache = _TokenCache(budget=30)
    texts = ["Ada Lovelace met", "Charles Babbage .", "in London", "x" * 40]
    for text in texts:
        assert cache.get(text, _tokens) == _tokens(text)
    # 16 + 17 + 9 characters: the first went out for the third; 40 is over the budget.
    assert list(cache.entries) == ["Charles Babbage .", "in London"] and cache.held == 26
    cache.get("Charles Babbage .", _tokens)  # used again: "in London" is the older now
    cache.get("New York .", _tokens)
    assert list(cache.entries) == ["Charles Babbage .", "New York ."] and cache.held == 27
