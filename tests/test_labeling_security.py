"""The labeling app under hostile or unlucky input: every refusal is a JSON 4xx, never a 500
or a plain-text error, and no secret or file is reachable without logging in."""

from __future__ import annotations

import sys
import threading
import time
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


# --- an unexpected exception is a JSON 500 with the security headers ---


@pytest.mark.parametrize("raise_server_exceptions", [True, False])
def test_an_unexpected_exception_is_a_json_500_with_the_security_headers(
    app, users, monkeypatch, caplog, raise_server_exceptions
):
    ann = login(app, "ann", users["ann"], raise_server_exceptions=raise_server_exceptions)

    def broken(*args, **kwargs):
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(app.state.service, "progress", broken)
    response = ann.get("/api/progress")
    assert_json_error(response, 500)
    assert response.json()["error"] == "internal"
    assert "the disk is on fire" not in response.text  # the log has it, the client does not
    assert "the disk is on fire" in caplog.text


# --- /docs cannot work under the CSP: not offered; /openapi.json stays ---


def test_the_interactive_docs_are_off_and_the_schema_stays(app):
    client = TestClient(app)
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert "/api/items/next" in client.get("/openapi.json").json()["paths"]


# --- bad input is a 4xx naming what is wrong, never a 500 ---


@pytest.mark.parametrize("lead_time_ms", [2**63, 10**30, -1, 7 * 24 * 3600 * 1000 + 1])
@pytest.mark.parametrize("action", ["label", "skip"])
def test_a_lead_time_out_of_bounds_is_refused_naming_the_field(app, users, action, lead_time_ms):
    ann = login(app, "ann", users["ann"], raise_server_exceptions=False)
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    response = ann.post(
        f"/api/items/{item}/{action}", json={"label": "yes", "lead_time_ms": lead_time_ms}
    )
    assert_json_error(response, 422)
    assert "lead_time_ms" in response.json()["detail"]
    ok = ann.post(f"/api/items/{item}/{action}", json={"label": "yes", "lead_time_ms": 60_000})
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"username": "\\ud800x", "password": "x"}',
        b'{"username": "ann", "password": "\\ud800x"}',
    ],
)
def test_a_login_with_a_lone_surrogate_is_refused(app, body):
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert_json_error(response, response.status_code)


def test_a_non_ascii_csrf_token_is_forbidden(app, users):
    ann = login(app, "ann", users["ann"], raise_server_exceptions=False)
    del ann.headers["X-CSRF-Token"]
    response = ann.post("/api/undo", headers=[(b"X-CSRF-Token", b"\xe9t\xe9")])
    assert_json_error(response, 403)


def test_a_non_ascii_cli_token_is_refused(app):
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post(
        "/api/cli",
        json={"argv": ["queue", "show", "x"], "cwd": "/"},
        headers=[(b"X-CLI-Token", b"\xff")],
    )
    assert_json_error(response, 401)


# --- POST /api/cli: stdout and stderr are redirected under the lock only ---

CLI = {"X-CLI-Token": "cli-secret"}


def test_help_comes_back_in_the_response(app, capsys):
    client = TestClient(app)
    response = client.post("/api/cli", json={"argv": ["--help"], "cwd": "/"}, headers=CLI)
    answer = response.json()
    assert answer["code"] == 0 and "usage:" in answer["stdout"]
    assert "usage:" not in capsys.readouterr().out  # not on the server's own stdout


def test_interleaved_commands_leave_stderr_as_it_was(app, project, monkeypatch):
    """A command runs while a second one fails to parse, and ends before that parse ends.

    Were the parse's redirection of stderr outside the lock, it would restore the running
    command's buffer as sys.stderr, for good."""
    from active_labeling import cli

    real_stderr, real_stdout = sys.stderr, sys.stdout
    monkeypatch.setattr(sys, "stderr", real_stderr)  # put back at teardown, whatever happens
    monkeypatch.setattr(sys, "stdout", real_stdout)
    parsing, first_done = threading.Event(), threading.Event()
    build_parser = cli.build_parser

    def slow_parser():
        parser = build_parser()
        parse_args = parser.parse_args

        def parse(argv):
            if argv == ["queue", "bogus"]:
                parsing.set()
                first_done.wait(timeout=5)
            return parse_args(argv)

        parser.parse_args = parse
        return parser

    def slow_dispatch(args, stderr):
        parsing.wait(timeout=2)  # the other parse starts meanwhile, unless it waits its turn
        return 0

    monkeypatch.setattr(cli, "build_parser", slow_parser)
    monkeypatch.setattr(forwarding, "_dispatch", slow_dispatch)
    codes = {}

    def run(name, argv):
        response = TestClient(app).post("/api/cli", json={"argv": argv, "cwd": "/"}, headers=CLI)
        codes[name] = response.json()["code"]
        if name == "first":
            first_done.set()

    threads = [
        threading.Thread(target=run, args=("first", ["queue", "show", str(project.root)])),
        threading.Thread(target=run, args=("second", ["queue", "bogus"])),
    ]
    threads[0].start()
    time.sleep(0.3)  # the first command holds the lock
    threads[1].start()
    for thread in threads:
        thread.join(timeout=30)
    assert codes == {"first": 0, "second": 2}
    assert sys.stderr is real_stderr and sys.stdout is real_stdout


# --- the login throttle: atomic, and bounded in memory ---


def test_parallel_wrong_passwords_get_at_most_five_tries(app, monkeypatch):
    from active_labeling.labeling import auth_routes
    from active_labeling.labeling.auth import AuthError

    def slow_wrong_password(con, name, password):
        time.sleep(0.3)  # every guess is in flight before the first one fails
        raise AuthError("wrong user name or password")

    monkeypatch.setattr(auth_routes, "check_password", slow_wrong_password)
    start = threading.Barrier(20)

    def guess(i):
        client = TestClient(app, raise_server_exceptions=False)
        start.wait()
        return client.post("/api/login", json={"username": "ann", "password": f"guess{i}"})

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as pool:
        codes = [response.status_code for response in pool.map(guess, range(20))]
    assert codes.count(401) == 5 and codes.count(429) == 15, codes


def test_the_throttle_forgets_stale_names(app):
    app.state.throttle = LoginThrottle(attempts=5, window=0.2)
    client = TestClient(app)
    for round_ in range(4):
        for i in range(8):  # 5 tried, 3 refused: the client is used up
            name = f"nobody{round_}-{i}"
            client.post("/api/login", json={"username": name, "password": "x"})
        time.sleep(0.25)
    client.post("/api/login", json={"username": "last", "password": "x"})
    assert len(app.state.throttle._failures) <= 2  # 'user:last' and this client


def test_a_too_long_user_name_is_refused_before_any_work(app):
    response = TestClient(app).post("/api/login", json={"username": "n" * 201, "password": "x"})
    assert_json_error(response, 422)
    assert "username" in response.json()["detail"]
    assert not app.state.throttle._failures


def test_a_successful_login_gives_its_attempt_back(users):
    throttle = LoginThrottle(attempts=2, window=60)
    for _ in range(5):
        stamp = throttle.reserve("user:ann", "client:a")
        throttle.release(stamp, "user:ann", "client:a")
    assert not throttle._failures
    throttle.reserve("user:ann", "client:a")
    throttle.reserve("user:ann", "client:a")
    with pytest.raises(RateLimitedError):
        throttle.reserve("user:ann", "client:c")  # ann has no attempt left
    with pytest.raises(RateLimitedError):
        throttle.reserve("user:carl", "client:a")  # nor has client a
    throttle.reserve("user:carl", "client:c")


# --- sessions: overlapping logins, and a password reset ends the user's sessions ---


def test_a_login_overlapping_another_logins_cleanup_succeeds(app):
    from active_labeling.labeling.auth import open_session, session_user

    service = app.state.service
    other, mine = service.cursor_for_command(), service.cursor_for_command()
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    other.execute("INSERT INTO web_sessions VALUES ('h', 'bob', 'c', ?, ?)", [old, old])
    # Another login is inside its transaction, deleting the same expired sessions.
    other.execute("BEGIN TRANSACTION")
    other.execute("DELETE FROM web_sessions WHERE expires_at < ?", [datetime.now(timezone.utc)])
    try:
        session_id, user = open_session(mine, User("ann", "labeler"))
    finally:
        other.execute("ROLLBACK")
    assert session_user(mine, session_id) == user
    # Without a conflict, the expired sessions go.
    open_session(mine, User("ann", "labeler"))
    assert not mine.execute("SELECT 1 FROM web_sessions WHERE expires_at < now()").fetchall()
    other.close()
    mine.close()


def test_parallel_logins_all_succeed(app, users):
    from concurrent.futures import ThreadPoolExecutor

    service = app.state.service
    command = service.cursor_for_command()
    passwords = {f"u{i}": add_user(command, f"u{i}", "labeler") for i in range(12)}
    old = datetime.now(timezone.utc) - timedelta(hours=1)
    codes = []
    for _ in range(3):
        command.execute(
            "INSERT INTO web_sessions SELECT 'h' || i || random(), 'ann', 'c', ?, ? "
            "FROM range(50) t(i)",
            [old, old],
        )
        start = threading.Barrier(len(passwords))

        def log_in(name, start=start):
            client = TestClient(app, raise_server_exceptions=False)
            start.wait()
            body = {"username": name, "password": passwords[name]}
            return client.post("/api/login", json=body).status_code

        app.state.throttle = LoginThrottle(attempts=100)  # one client, many logins
        with ThreadPoolExecutor(len(passwords)) as pool:
            codes += list(pool.map(log_in, passwords))
    command.close()
    assert codes == [200] * len(codes)


def test_resetting_a_password_ends_the_users_sessions_but_not_their_tokens(app, users):
    from active_labeling.labeling.auth import create_token

    ann, bob = login(app, "ann", users["ann"]), login(app, "bob", users["bob"])
    command = app.state.service.cursor_for_command()
    token = create_token(command, "ann")
    new_password = add_user(command, "ann", "labeler")
    command.close()
    assert_json_error(ann.get("/api/session"), 401)
    assert bob.get("/api/session").status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert TestClient(app).get("/api/session", headers=bearer).status_code == 200
    assert login(app, "ann", new_password).get("/api/session").status_code == 200
