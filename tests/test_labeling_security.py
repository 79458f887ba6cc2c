"""The labeling app under hostile or unlucky input: every refusal is a JSON 4xx, never a 500
or a plain-text error, and no secret or file is reachable without logging in."""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from active_labeling.labeling import forwarding
from active_labeling.labeling.app import SECURITY_HEADERS, create_app
from active_labeling.labeling.auth import LoginThrottle, RateLimitedError, User, add_user

from flow_helpers import make_project


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "p", n=40, n_labels=10)


@pytest.fixture
def users(project):
    with project.connect() as con:
        return {"ann": add_user(con, "ann", "labeler"), "bob": add_user(con, "bob", "labeler")}


@pytest.fixture
def app(project, users):
    app = create_app(project.root, lease_minutes=10, cli_token="cli-secret")
    yield app
    app.state.service.close()


def login(app, name, password, **kwargs):
    client = TestClient(app, **kwargs)
    response = client.post("/api/login", json={"username": name, "password": password})
    assert response.status_code == 200, response.text
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


def assert_json_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value


# --- media needs a login; odd paths are 404 ---


def test_media_needs_a_logged_in_user(app, project, users):
    (project.root / "media").mkdir()
    (project.root / "media" / "cat.png").write_bytes(b"PNGDATA")
    assert_json_error(TestClient(app).get("/media/cat.png"), 401)
    ann = login(app, "ann", users["ann"])
    assert ann.get("/media/cat.png").content == b"PNGDATA"


@pytest.mark.parametrize(
    "path", ["/media/cat.png%00.txt", "/media/%00", "/media/" + "a" * 5000, "/media/a/" * 300]
)
def test_media_paths_with_a_nul_byte_or_too_long_are_not_found(app, project, users, path):
    (project.root / "media").mkdir()
    ann = login(app, "ann", users["ann"], raise_server_exceptions=False)
    assert_json_error(ann.get(path), 404)
