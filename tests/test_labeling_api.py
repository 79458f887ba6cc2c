"""The labeling API with FastAPI's test client: handout, leases, writes, and every refusal."""

from __future__ import annotations

import warnings
from datetime import timedelta

import duckdb
import pytest
from fastapi.testclient import TestClient

import active_labeling.labeling.service as service_module
from active_labeling.labeling.app import SECURITY_HEADERS, create_app
from active_labeling.labeling.auth import add_user, create_token

from flow_helpers import declare_train_and_query, make_project


@pytest.fixture
def project(tmp_path):
    project = make_project(tmp_path / "p", n=80, n_labels=20)
    declare_train_and_query(project, run=True, queue_size=10)
    return project


@pytest.fixture
def users(project):
    with project.connect() as con:
        return {
            "ann": add_user(con, "ann", "labeler"),
            "bob": add_user(con, "bob", "labeler"),
            "root": add_user(con, "root", "admin"),
        }


@pytest.fixture
def app(project, users):
    return create_app(project.root, lease_minutes=10)


def login(app, name, password):
    client = TestClient(app)
    response = client.post("/api/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def test_login_sets_a_strict_httponly_cookie_and_wrong_passwords_are_refused(app, users):
    client = TestClient(app)
    bad = client.post("/api/login", json={"username": "ann", "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "AuthError"
    good = client.post("/api/login", json={"username": "ann", "password": users["ann"]})
    cookie = good.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/session").json()["project"]["classes"] == ["yes", "no"]


def test_failed_logins_slow_the_client_down_for_that_name(app, users):
    from active_labeling.labeling.auth import LoginThrottle

    now = [1000.0]
    app.state.throttle = LoginThrottle(clock=lambda: now[0])
    client = TestClient(app)
    for _ in range(5):
        response = client.post("/api/login", json={"username": "ann", "password": "x"})
        assert response.status_code == 401
    response = client.post("/api/login", json={"username": "ann", "password": users["ann"]})
    assert response.status_code == 429 and "too many failed logins" in response.json()["detail"]
    assert response.headers["Retry-After"] == "1"
    now[0] += 1
    response = client.post("/api/login", json={"username": "ann", "password": users["ann"]})
    assert response.status_code == 200, response.text


def test_every_response_carries_the_security_headers(app):
    response = TestClient(app).get("/api/session")
    assert response.status_code == 401
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_handout_follows_the_queue_and_never_leases_one_item_twice(app, users, project):
    ann, bob = login(app, "ann", users["ann"]), login(app, "bob", users["bob"])
    first = ann.get("/api/items/next?count=3").json()
    assert [i["rank"] for i in first["items"]] == [1, 2, 3]
    assert first["items"][0]["prediction"]["label"] in ("yes", "no")
    again = ann.get("/api/items/next?count=3").json()  # the same leased items come back
    assert [i["item_id"] for i in again["items"]] == [i["item_id"] for i in first["items"]]
    other = bob.get("/api/items/next?count=3").json()
    assert [i["rank"] for i in other["items"]] == [4, 5, 6]


def test_label_is_acknowledged_after_commit_and_written_once(app, users, project):
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]
    ack = ann.post(
        f"/api/items/{item['item_id']}/label",
        json={"label": "yes", "comment": "sure", "lead_time_ms": 1234, "session": "s1"},
    )
    assert ack.status_code == 200 and ack.json()["status"] == "labeled"
    store = app.state.service.con
    row = store.execute(
        "SELECT item_id, label, status, annotator, session, comment, lead_time_ms, "
        "model_version, queue_score IS NOT NULL FROM label_events WHERE event_id = ?",
        [ack.json()["event_id"]],
    ).fetchone()
    assert row == (item["item_id"], "yes", "labeled", "ann", "s1", "sure", 1234, "1", True)
    nxt = ann.get("/api/items/next").json()["items"][0]
    assert nxt["item_id"] != item["item_id"] and nxt["rank"] == 2
    progress = ann.get("/api/progress?session=s1").json()
    assert progress["mine_session"] == 1 and progress["total_labeled"] == 21


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("no auth", 401),
        ("no csrf", 403),
        ("unknown item", 404),
        ("bad label", 422),
        ("leased", 409),
        ("wrong role", 403),
        ("bad token", 401),
    ],
)
def test_every_refusal(case, status, app, users):
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    if case == "no auth":
        response = TestClient(app).post(f"/api/items/{item}/label", json={"label": "yes"})
    elif case == "no csrf":
        del ann.headers["X-CSRF-Token"]
        response = ann.post(f"/api/items/{item}/label", json={"label": "yes"})
    elif case == "unknown item":
        response = ann.post("/api/items/NOPE/label", json={"label": "yes"})
    elif case == "bad label":
        response = ann.post(f"/api/items/{item}/label", json={"label": "maybe"})
    elif case == "leased":
        bob = login(app, "bob", users["bob"])
        response = bob.post(f"/api/items/{item}/label", json={"label": "yes"})
    elif case == "wrong role":
        response = ann.get("/api/export?format=csv")
    else:
        response = TestClient(app).get("/api/progress", headers={"Authorization": "Bearer x"})
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    with app.state.service.lock:
        count = app.state.service.con.execute(
            "SELECT count(*) FROM label_events WHERE annotator <> 'import'"
        ).fetchone()[0]
    assert count == 0  # a refusal writes nothing


def test_bearer_tokens_need_no_csrf(app, users, project):
    with app.state.service.lock:
        token = create_token(app.state.service.con, "bob")
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    item = client.get("/api/items/next").json()["items"][0]["item_id"]
    assert client.post(f"/api/items/{item}/skip", json={}).json()["status"] == "skipped"


def test_skip_undo_and_relabel_are_events(app, users):
    ann = login(app, "ann", users["ann"])
    a, b = (i["item_id"] for i in ann.get("/api/items/next?count=2").json()["items"])
    ann.post(f"/api/items/{a}/label", json={"label": "yes"})
    ann.post(f"/api/items/{b}/skip", json={"comment": "unsure"})
    undone = ann.post("/api/undo").json()
    assert undone["undone"] == {"item_id": b, "label": None, "status": "skipped"}
    assert undone["item"]["item_id"] == b
    ann.post(f"/api/items/{a}/label", json={"label": "no"})  # back, change the label
    history = ann.get("/api/history").json()["items"]
    assert [(h["item_id"], h["status"]) for h in history[:4]] == [
        (a, "labeled"),
        (b, "undone"),
        (b, "skipped"),
        (a, "labeled"),
    ]
    assert ann.get(f"/api/items/{a}").json()["current_label"] == "no"


def test_admin_sees_stats_events_and_exports(app, users, tmp_path):
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    ann.post(f"/api/items/{item}/label", json={"label": "no"})
    root = login(app, "root", users["root"])
    stats = root.get("/api/admin/stats").json()
    assert {"annotator": "ann", "labeled": 1, "skipped": 0}.items() <= stats["labelers"][0].items()
    assert root.get("/api/admin/events").json()["events"][0]["item_id"] == item
    export = root.get("/api/export?format=csv")
    assert export.status_code == 200 and item in export.text


def test_undone_labels_count_nowhere_and_a_relabel_counts_its_item_once(app, users):
    ann = login(app, "ann", users["ann"])
    a, b, c = (i["item_id"] for i in ann.get("/api/items/next?count=3").json()["items"])
    for item in (a, b):
        ann.post(f"/api/items/{item}/label", json={"label": "yes", "session": "s"})
    ann.post("/api/undo?session=s")  # takes b's label back
    ann.post(f"/api/items/{a}/label", json={"label": "no", "session": "s"})  # relabel a
    ann.post(f"/api/items/{c}/skip", json={"session": "s"})
    ann.post("/api/undo?session=s")  # takes the skip of c back
    progress = ann.get("/api/progress?session=s").json()
    assert (progress["mine_session"], progress["mine_total"]) == (1, 1)
    root = login(app, "root", users["root"])
    (row,) = [r for r in root.get("/api/admin/stats").json()["labelers"] if r["annotator"] == "ann"]
    assert (row["labeled"], row["skipped"]) == (1, 0)


def test_labels_per_hour_count_the_time_at_work_not_the_last_hour(app, users, monkeypatch):
    """Four labels given at once after 60 s on the first item: 240 an hour of work (the
    count of the last hour said 4, and 0 an hour later)."""
    ann = login(app, "ann", users["ann"])
    items = [i["item_id"] for i in ann.get("/api/items/next?count=4").json()["items"]]
    for item in items:
        ann.post(f"/api/items/{item}/label", json={"label": "yes", "lead_time_ms": 60_000})
    rate = ann.get("/api/progress").json()["labels_per_hour"]
    assert 200 < rate <= 240  # 4 labels in 60 s and the few seconds between the posts
    later = service_module._now() + timedelta(hours=2)
    monkeypatch.setattr(service_module, "_now", lambda: later)
    assert ann.get("/api/progress").json()["labels_per_hour"] == rate
    bob = login(app, "bob", users["bob"])
    assert bob.get("/api/progress").json()["labels_per_hour"] is None  # nothing measured yet
    # Two labels in a couple of seconds: no pace yet (it would read thousands an hour).
    for item in [i["item_id"] for i in bob.get("/api/items/next?count=2").json()["items"]]:
        bob.post(f"/api/items/{item}/label", json={"label": "no", "lead_time_ms": 1_000})
    assert bob.get("/api/progress").json()["labels_per_hour"] is None


def test_a_restart_keeps_leases_and_expired_leases_free_their_items(project, users, monkeypatch):
    first = create_app(project.root, lease_minutes=10)
    ann = login(first, "ann", users["ann"])
    held = ann.get("/api/items/next").json()["items"][0]["item_id"]
    first.state.service.close()
    second = create_app(project.root, lease_minutes=10)
    bob = login(second, "bob", users["bob"])
    bobs_first = bob.get("/api/items/next").json()["items"][0]["item_id"]
    assert bobs_first != held  # still ann's, after the restart
    bob.post(f"/api/items/{bobs_first}/label", json={"label": "yes"})
    later = service_module._now() + timedelta(minutes=11)
    monkeypatch.setattr(service_module, "_now", lambda: later)
    assert bob.get("/api/items/next").json()["items"][0]["item_id"] == held  # expired: free


def test_when_the_queue_runs_out_items_follow_in_dataset_order(project, users):
    app = create_app(project.root)
    ann = login(app, "ann", users["ann"])
    seen = []
    for _ in range(11):
        handout = ann.get("/api/items/next").json()
        item = handout["items"][0]
        seen.append((item["rank"], handout["queue_exhausted"]))
        ann.post(f"/api/items/{item['item_id']}/label", json={"label": "yes"})
    assert seen[:10] == [(r, False) for r in range(1, 11)]
    assert seen[10] == (None, True)


def test_openapi_documents_the_api(app):
    paths = TestClient(app).get("/openapi.json").json()["paths"]
    for path in [
        "/api/items/next",
        "/api/items/{item_id}/label",
        "/api/items/{item_id}/skip",
        "/api/undo",
        "/api/progress",
        "/api/export",
    ]:
        assert path in paths
    # The bodies are read by a dependency, after the caller's check; still documented.
    label = paths["/api/items/{item_id}/label"]["post"]["requestBody"]
    assert label["required"] is True
    assert {"label", "labels", "lead_time_ms"} <= set(
        label["content"]["application/json"]["schema"]["properties"]
    )
    assert paths["/api/items/{item_id}/skip"]["post"]["requestBody"]["required"] is False


def test_media_route_refuses_paths_outside_the_media_folder(app, project, users):
    (project.root / "media").mkdir()
    (project.root / "media" / "a.txt").write_text("ok")
    (project.root / "secret.txt").write_text("no")
    client = login(app, "ann", users["ann"])
    assert client.get("/media/a.txt").text == "ok"
    assert client.get("/media/../secret.txt").status_code == 404
    assert client.get("/media/%2e%2e/secret.txt").status_code == 404


def test_the_columns_shown_are_configurable(project, users):
    app = create_app(project.root, columns=["review", "city"])
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]
    assert item["columns"] == ["review", "city"] and set(item["values"]) == {"review", "city"}
    app.state.service.close()
    with pytest.raises(Exception, match="no column 'nope' to show"):
        create_app(project.root, columns=["nope"])


def test_serving_beyond_loopback_without_tls_warns(capsys, monkeypatch, project, users):
    import uvicorn

    from active_labeling.cli import main

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    assert main(["serve", str(project.root), "--host", "0.0.0.0"]) == 0
    assert "without TLS" in capsys.readouterr().err
    assert main(["serve", str(project.root), "--host", "127.0.0.1"]) == 0
    assert "without TLS" not in capsys.readouterr().err
    assert not (project.root / "serve.json").exists()  # removed when the server stops


def test_the_app_starts_and_stops_through_its_lifespan_without_deprecated_hooks(project, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # on_event warns at registration
        app = create_app(project.root, scheduler=True, scheduler_poll_seconds=60)
    assert not app.router.on_startup and not app.router.on_shutdown
    marker = tmp_path / "serve.json"
    marker.write_text("{}")
    app.state.server_file = marker
    with TestClient(app) as client:  # runs the lifespan: startup, then shutdown
        assert app.state.scheduler.alive
        assert client.get("/healthz").status_code == 200
    assert not app.state.scheduler.alive
    assert not marker.exists()
    with pytest.raises(duckdb.ConnectionException):
        app.state.service.con.execute("SELECT 1")  # the store is closed


def test_the_model_hint_is_left_out_when_not_asked_for(app, users):
    ann = login(app, "ann", users["ann"])
    quiet = ann.get("/api/items/next?count=2&hint=0").json()["items"]
    assert [i["prediction"] for i in quiet] == [None, None]
    item = ann.get(f"/api/items/{quiet[0]['item_id']}?hint=1").json()
    assert (
        item["prediction"]["label"] in ("yes", "no")
        and 0.5 <= item["prediction"]["confidence"] <= 1
    )


def test_a_multi_label_project_takes_lists_of_classes(tmp_path):
    from active_labeling.flow.project import Project
    from active_labeling.flow.train_model import TrainModelParams, train_model
    from active_labeling.store import datasets

    from flow_helpers import write_pool_csv

    project = Project.init(tmp_path / "m", classes=["red", "green", "blue"], multi_label=True)
    with project.connect() as con:
        pool = write_pool_csv(tmp_path / "pool.csv", n=10)
        project.record_dataset(datasets.import_file(con, "pool", pool, id_column="id"))
        password = add_user(con, "ann", "labeler")
    app = create_app(project.root)
    ann = login(app, "ann", password)
    assert ann.get("/api/session").json()["project"]["multi_label"] is True
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    single = ann.post(f"/api/items/{item}/label", json={"label": "red"})
    assert single.status_code == 422 and "send 'labels'" in single.json()["detail"]
    unknown = ann.post(f"/api/items/{item}/label", json={"labels": ["red", "pink"]})
    assert unknown.status_code == 422 and "'pink'" in unknown.json()["detail"]
    ack = ann.post(f"/api/items/{item}/label", json={"labels": ["blue", "red", "blue"]})
    assert ack.status_code == 200 and ack.json()["label"] == '["red", "blue"]'
    assert ann.get(f"/api/items/{item}").json()["current_label"] == ["red", "blue"]
    saved = train_model(
        app.state.service.con, project, dataset="pool", model="m", params=TrainModelParams()
    )
    assert saved.meta.multi_label and saved.meta.classes == ["red", "green", "blue"]
    app.state.service.close()


def test_only_an_admin_sets_the_guide_and_every_session_gets_it_as_text(app, users):
    ann, root = login(app, "ann", users["ann"]), login(app, "root", users["root"])
    body = {"task": "  Is the review positive?\r\nRead it all. <b>  ", "classes": {"yes": "praise"}}
    assert ann.put("/api/admin/guide", json=body).status_code == 403
    assert ann.get("/api/session").json()["project"]["guide"]["task"] == ""
    saved = root.put("/api/admin/guide", json=body)
    assert saved.status_code == 200, saved.text
    guide = ann.get("/api/session").json()["project"]["guide"]
    assert guide["task"] == "Is the review positive?\nRead it all. <b>"  # stored as text
    assert guide["classes"] == {"yes": "praise"} and guide["updated_by"] == "root"
    for bad, where in [
        ({"task": "x", "classes": {"maybe": "?"}}, "not one of the project's classes"),
        ({"task": "bell \x07"}, "control character"),
        ({"task": "x" * 4001}, "body.task"),
    ]:
        refused = root.put("/api/admin/guide", json=bad)
        assert refused.status_code == 422 and where in refused.json()["detail"], refused.text
    assert ann.get("/api/session").json()["project"]["guide"]["task"].startswith("Is the")


def test_cards_are_encoded_by_json_and_what_json_cannot_encode_falls_back():
    import datetime as dt
    import json

    from fastapi.encoders import jsonable_encoder

    from active_labeling.labeling.dependencies import cards_response

    card = {"items": [{"item_id": "t0", "tokens": [(0, 3), (4, 7)], "values": {"x": 1.5}}]}
    assert json.loads(cards_response(card).body) == jsonable_encoder(card)
    odd = {"items": [{"values": {"day": dt.date(2026, 12, 4), "tags": {"a"}}}]}
    assert json.loads(cards_response(odd).body) == {
        "items": [{"values": {"day": "2026-12-04", "tags": ["a"]}}]
    }
