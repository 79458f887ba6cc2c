"""Review in the labeling app: the queue, accept / correct / send back, and every refusal."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.store import labels
from active_labeling.store.labels import LabelEvent

from flow_helpers import make_project

#: ann and bob split on I1, I2 and I3 (ties), agree on I5; I6 is two against one.
SPLIT = [("I1", "yes", "no"), ("I2", "yes", "no"), ("I3", "no", "yes"), ("I5", "yes", "yes")]


@pytest.fixture
def project(tmp_path):
    project = make_project(tmp_path / "p", n=40, n_labels=10)  # I0, I4, ... I36 imported
    with project.connect() as con:
        events = []
        for item, ann, bob in SPLIT:
            events += [
                LabelEvent("pool", item, "labeled", "ann", label=ann),
                LabelEvent("pool", item, "labeled", "bob", label=bob),
            ]
        events += [
            LabelEvent("pool", "I6", "labeled", name, label=label)
            for name, label in (("ann", "yes"), ("bob", "no"), ("cy", "no"))
        ]
        labels.append_events(con, events)
    return project


@pytest.fixture
def users(project):
    with project.connect() as con:
        return {
            name: add_user(con, name, role)
            for name, role in (
                ("ann", "labeler"),
                ("bob", "labeler"),
                ("rev", "reviewer"),
                ("eve", "reviewer"),
                ("root", "admin"),
            )
        }


def login(app, name, password):
    client = TestClient(app)
    response = client.post("/api/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


@pytest.fixture
def app(project, users):
    return create_app(project.root)


def _suspect(con, item: str, rank: int, suggested: str = "no") -> None:
    """A suspect of model 'clf' v1 on ``item``'s current label (as flow.label_errors marks)."""
    event_id, label = con.execute(
        "SELECT event_id, label FROM item_state WHERE item_id = ?", [item]
    ).fetchone()
    now = datetime.now(timezone.utc)
    con.execute(
        "INSERT INTO label_suspects VALUES ('pool', 'clf', '1', ?, ?, ?, ?, 0.1, ?, ?)",
        [item, event_id, label, suggested, rank, now],
    )
    con.execute(
        "INSERT INTO label_error_runs SELECT 'pool', 'clf', '1', 10, 0, 5, ? WHERE NOT EXISTS "
        "(SELECT 1 FROM label_error_runs)",
        [now],
    )


def _events(app) -> list[tuple]:
    return app.state.service.con.execute(
        "SELECT event_id, item_id, label, status, review, annotator FROM label_events "
        "ORDER BY event_id"
    ).fetchall()


def test_the_queue_gives_suspects_then_disagreements_then_a_sample(project, users):
    project.config.project.review_sample = 1.0  # every item labeled once, for the test
    project.save()
    with project.connect() as con:
        _suspect(con, "I8", rank=2)
        _suspect(con, "I4", rank=1)
    rev = login(create_app(project.root), "rev", users["rev"])
    queue = rev.get("/api/review/next?count=20").json()
    order = [(card["item_id"], card["reasons"]) for card in queue["items"]]
    assert order[:2] == [("I4", ["suspect", "sample"]), ("I8", ["suspect", "sample"])]
    # Disagreements: the ties first (in labeling order), then I6's 2-against-1 consensus.
    assert [i for i, r in order[2:6]] == ["I1", "I2", "I3", "I6"]
    assert all(r == ["sample"] for _, r in order[6:]) and "I5" not in dict(order)  # agreed
    assert queue["totals"] == {"suspect": 2, "disagreement": 4, "sample": 10}
    card = queue["items"][2]
    assert [(v["annotator"], v["label"]) for v in card["labels"]] == [("ann", "yes"), ("bob", "no")]
    assert card["consensus"]["label"] is None and card["proposed_label"] is None
    i6 = queue["items"][5]
    assert i6["consensus"]["label"] == "no" and i6["consensus"]["confidence"] == pytest.approx(
        2 / 3
    )
    suspect = queue["items"][0]["suspect"]
    assert suspect["suggested"] == "no" and suspect["rank"] == 1


def test_accept_correct_and_send_back_are_events_and_a_decision_is_final(app, users, tmp_path):
    rev, ann, bob = (login(app, n, users[n]) for n in ("rev", "ann", "bob"))
    cards = {c["item_id"]: c for c in rev.get("/api/review/next?count=10").json()["items"]}
    fix = rev.post(
        "/api/review/items/I1/correct",
        json={
            "label": "no",
            "comment": "see the guide",
            "seen_event_id": cards["I1"]["seen_event_id"],
        },
    )
    assert fix.status_code == 200 and fix.json()["review"] == "corrected"
    ok = rev.post(
        "/api/review/items/I6/accept", json={"seen_event_id": cards["I6"]["seen_event_id"]}
    )
    assert ok.json() == {**ok.json(), "review": "accepted", "label": "no"}
    back = rev.post("/api/review/items/I2/send-back", json={"comment": "the photo is blurry"})
    assert back.status_code == 200
    # The decision is final: the labeler who labeled I1 cannot change it.
    again = ann.post("/api/items/I1/label", json={"label": "yes"})
    assert again.status_code == 409 and "reviewer's decision is final" in again.json()["detail"]
    # The item's history shows every event to reviewers, the decision last.
    item = rev.get("/api/items/I1").json()
    assert [(e["annotator"], e["label"], e["review"]) for e in item["events"]] == [
        ("ann", "yes", None),
        ("bob", "no", None),
        ("rev", "no", "corrected"),
    ]
    assert item["review"]["comment"] == "see the guide" and item["current_label"] == "no"
    assert "events" not in ann.get("/api/items/I1").json()
    # Sent back: the next labeler who asks gets it first, with the reviewer's comment.
    first = bob.get("/api/items/next").json()["items"][0]
    assert first["item_id"] == "I2" and first["sent_back"]["comment"] == "the photo is blurry"
    bob.post("/api/items/I2/label", json={"label": "no"})
    assert ann.get("/api/items/next").json()["items"][0]["item_id"] != "I2"
    export = login(app, "root", users["root"]).get("/api/export?format=csv")
    out = pd.read_csv(io.StringIO(export.text)).set_index("item_id")
    assert out.loc["I1", ["label", "label_source", "review"]].tolist() == [
        "no",
        "review",
        "corrected",
    ]
    assert out.loc["I2", ["label", "n_labels"]].tolist() == ["no", 1]  # ann's vote set aside
    summary = rev.get("/api/review/summary").json()
    assert summary["decisions"] == {"corrected": 1, "accepted": 1, "sent_back": 1}
    assert summary["queue"]["disagreement"] == 1  # I3 is left


def test_a_sent_back_item_comes_first_after_a_restart(project, users):
    app = create_app(project.root)
    rev = login(app, "rev", users["rev"])
    assert rev.post("/api/review/items/I3/send-back", json={"comment": "again"}).status_code == 200
    app.state.service.close()
    app = create_app(project.root)
    item = login(app, "ann", users["ann"]).get("/api/items/next").json()["items"][0]
    assert item["item_id"] == "I3" and item["sent_back"]["reviewer"] == "rev"


REVIEW_ROUTES = [
    ("GET", "/api/review/next", None),
    ("GET", "/api/review/summary", None),
    ("GET", "/api/review/items/I1/history", None),
    ("POST", "/api/review/items/I1/accept", {}),
    ("POST", "/api/review/items/I1/correct", {"label": "no"}),
    ("POST", "/api/review/items/I1/send-back", {"comment": "no"}),
]


@pytest.mark.parametrize(("method", "path", "body"), REVIEW_ROUTES)
def test_a_labeler_calling_a_review_route_is_refused(method, path, body, app, users):
    ann = login(app, "ann", users["ann"])
    before = _events(app)
    response = ann.request(method, path, json=body)
    assert response.status_code == 403
    assert response.json()["detail"] == "this needs the role admin or reviewer"
    assert _events(app) == before


BAD = {
    "nobody labeled it": ("I7", "accept", {}, 409, "nobody labeled it"),
    "a class outside the list": ("I1", "correct", {"label": "maybe"}, 422, "label: 'maybe'"),
    "a correction without a class": ("I1", "correct", {}, 422, "label: a correction needs"),
    "a send-back without a comment": ("I1", "send-back", {"comment": " "}, 422, "comment:"),
    "a send-back without a body": ("I1", "send-back", None, 422, "body: Field required"),
    "accepting a tie": ("I1", "accept", {}, 409, "no consensus to accept"),
    "an unknown item": ("NOPE", "accept", {}, 404, "no item 'NOPE'"),
    "a stale card": ("I6", "accept", {"seen_event_id": 1}, 409, "changed since you opened it"),
    "a label with the class list": ("I1", "correct", {"labels": ["no"]}, 422, "send 'label'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_decisions_are_refused_by_field_and_nothing_is_written(case, app, users):
    item, action, body, status, message = BAD[case]
    rev = login(app, "rev", users["rev"])
    before = _events(app)
    response = rev.post(f"/api/review/items/{item}/{action}", json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    assert _events(app) == before


def test_two_reviewers_deciding_one_item_at_once_one_wins_and_the_log_keeps_it(app, users):
    rev, eve = login(app, "rev", users["rev"]), login(app, "eve", users["eve"])
    seen = rev.get("/api/items/I6").json()["seen_event_id"]
    start = threading.Barrier(2)
    answers = {}

    def decide(name, client, label):
        start.wait()
        answers[name] = client.post(
            "/api/review/items/I6/correct", json={"label": label, "seen_event_id": seen}
        )

    threads = [
        threading.Thread(target=decide, args=("rev", rev, "yes")),
        threading.Thread(target=decide, args=("eve", eve, "no")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(a.status_code for a in answers.values())
    assert codes == [200, 409]
    winner = next(n for n, a in answers.items() if a.status_code == 200)
    loser = next(a for a in answers.values() if a.status_code == 409)
    assert f"was decided by {winner}" in loser.json()["detail"]
    decisions = [e for e in _events(app) if e[4] is not None]
    assert len(decisions) == 1 and decisions[0][5] == winner
    state = app.state.service.con.execute(
        "SELECT status, annotator FROM item_state WHERE item_id = 'I6'"
    ).fetchone()
    assert state == ("reviewed", winner)
    # Seeing the decision, the other reviewer may still change it, on purpose.
    now = rev.get("/api/items/I6").json()["seen_event_id"]
    other = rev if winner == "eve" else eve
    changed = other.post("/api/review/items/I6/accept", json={"seen_event_id": now})
    assert changed.status_code == 200
    assert len([e for e in _events(app) if e[4] is not None]) == 2


def test_an_item_another_reviewer_holds_is_left_to_them(app, users):
    rev, eve = login(app, "rev", users["rev"]), login(app, "eve", users["eve"])
    held = [c["item_id"] for c in rev.get("/api/review/next?count=2").json()["items"]]
    assert held == ["I1", "I2"]
    others = [c["item_id"] for c in eve.get("/api/review/next?count=2").json()["items"]]
    assert others == ["I3", "I6"]
    refused = eve.post("/api/review/items/I1/correct", json={"label": "no"})
    assert refused.status_code == 409 and "being reviewed by rev" in refused.json()["detail"]


def test_a_multi_label_project_is_reviewed_with_lists_of_classes(tmp_path):
    from active_labeling.flow.project import Project
    from active_labeling.store import datasets

    from flow_helpers import write_pool_csv

    project = Project.init(tmp_path / "m", classes=["red", "blue"], multi_label=True)
    with project.connect() as con:
        pool = write_pool_csv(tmp_path / "m" / "pool.csv", n=10)
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        password = add_user(con, "rev", "reviewer")
        labels.append_events(
            con,
            [
                LabelEvent("pool", "I1", "labeled", "ann", label='["red"]'),
                LabelEvent("pool", "I1", "labeled", "bob", label='["red", "blue"]'),
                LabelEvent("pool", "I1", "labeled", "cy", label='["red"]'),
                LabelEvent("pool", "I2", "labeled", "ann", label='["blue"]'),
                LabelEvent("pool", "I2", "labeled", "bob", label="[]"),
            ],
        )
    app = create_app(project.root)
    rev = login(app, "rev", password)
    cards = {c["item_id"]: c for c in rev.get("/api/review/next?count=5").json()["items"]}
    assert cards["I1"]["proposed_label"] == ["red"]  # the majority per class
    assert cards["I2"]["proposed_label"] is None  # blue: one of two, a tie
    accepted = rev.post("/api/review/items/I1/accept").json()
    assert accepted["review"] == "accepted" and accepted["label"] == ["red"]
    fixed = rev.post("/api/review/items/I2/correct", json={"labels": ["blue"]}).json()
    assert fixed["review"] == "corrected" and fixed["label"] == ["blue"]
    refused = rev.post("/api/review/items/I2/correct", json={"label": "blue"})
    assert refused.status_code == 422 and "send 'labels'" in refused.json()["detail"]
