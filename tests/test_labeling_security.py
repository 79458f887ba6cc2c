"""The labeling app under hostile or unlucky input: every refusal is a JSON 4xx, never a 500
or a plain-text error, and no secret or file is reachable without logging in."""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from anyio.from_thread import start_blocking_portal
from fastapi.testclient import TestClient

from active_labeling.labeling import forwarding
from active_labeling.labeling.app import DEFAULT_MAX_BODY, MAX_BODY, SECURITY_HEADERS, create_app
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


# --- request bodies: capped per route, refused unread; the caller is checked first ---


def asgi_post(app, path, chunks, headers=()):
    """A POST straight through the ASGI interface, its body sent as ``chunks`` (an iterator,
    consumed only as the app asks): (status, headers, JSON answer, chunks the app read)."""
    chunks = iter(chunks)
    read = 0
    pending = next(chunks, None)

    async def receive():
        nonlocal read, pending
        if pending is None:
            return {"type": "http.disconnect"}
        body, pending = pending, next(chunks, None)
        read += 1
        return {"type": "http.request", "body": body, "more_body": pending is not None}

    messages = []

    async def send(message):
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    with start_blocking_portal() as portal:  # its own loop: the browser tests run one here
        portal.call(app, scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), json.loads(answer), read


def twice_the_cap(path, chunk_size=4096):
    """A body of twice the route's cap, in chunks of ``chunk_size`` bytes."""
    return itertools.repeat(b"x" * chunk_size, 2 * cap(path) // chunk_size)


JSON = ("Content-Type", "application/json")
BODY_ROUTES = ["/api/login", "/api/items/I1/label", "/api/items/I1/skip", "/api/cli"]


def cap(path):
    return MAX_BODY.get(path, DEFAULT_MAX_BODY)


def assert_too_large(status, headers, answer):
    assert status == 413
    assert answer["error"] == "ContentTooLarge" and "at most" in answer["detail"]
    assert headers[b"connection"] == b"close"  # the rest of the body is never read
    for name, value in SECURITY_HEADERS.items():
        assert headers[name.lower().encode()] == value.encode()


@pytest.mark.parametrize("path", [*BODY_ROUTES, "/api/undo", "/api/nowhere"])
def test_a_body_announced_over_its_cap_is_refused_before_it_is_read(app, path):
    length = ("Content-Length", str(200 * 1024 * 1024))
    status, headers, answer, read = asgi_post(app, path, [b"{}"], headers=[JSON, length])
    assert_too_large(status, headers, answer)
    assert read == 0


@pytest.mark.parametrize("path", BODY_ROUTES)
def test_a_chunked_body_is_refused_once_it_passes_its_cap(app, users, path):
    ann = login(app, "ann", users["ann"])  # let in, so that the route reads the body
    headers = [
        JSON,
        ("Cookie", f"al_session={ann.cookies['al_session']}"),
        ("X-CSRF-Token", ann.headers["X-CSRF-Token"]),
        ("X-CLI-Token", "cli-secret"),
    ]
    status, headers, answer, read = asgi_post(app, path, twice_the_cap(path), headers=headers)
    assert_too_large(status, headers, answer)
    assert read * 4096 <= cap(path) + 4096  # held no more than the cap


def test_the_caps_leave_room_for_the_largest_valid_bodies(app, users):
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    # Every character escaped, the longest fields the models take.
    escaped = lambda n: "\\u00e9" * n  # noqa: E731
    body = f'{{"label": "yes", "comment": "{escaped(2000)}", "session": "{escaped(100)}"}}'
    answer = ann.post(f"/api/items/{item}/label", content=body, headers=dict([JSON]))
    assert answer.status_code == 200, answer.text
    body = f'{{"username": "{escaped(200)}", "password": "{escaped(1024)}"}}'
    wrong = TestClient(app).post("/api/login", content=body, headers=dict([JSON]))
    assert wrong.status_code == 401, wrong.text  # checked, not refused for its size


@pytest.mark.parametrize("body", [b"{not json", json.dumps({"label": "x" * 60_000}).encode()])
@pytest.mark.parametrize(
    "path, credentials, status",
    [
        ("/api/items/I1/label", [], 401),
        ("/api/items/I1/label", ["cookie"], 403),  # a session, no CSRF token
        ("/api/items/I1/skip", [("Authorization", "Bearer al_wrong")], 401),
        ("/api/cli", [("X-CLI-Token", "wrong")], 401),
    ],
)
def test_the_caller_is_checked_before_the_body_is_read(app, users, path, credentials, status, body):
    if credentials == ["cookie"]:
        cookie = login(app, "ann", users["ann"]).cookies["al_session"]
        credentials = [("Cookie", f"al_session={cookie}")]
    length = ("Content-Length", str(len(body)))
    answer_status, _, answer, read = asgi_post(
        app, path, [body], headers=[JSON, length, *credentials]
    )
    assert (answer_status, read) == (status, 0), answer


def test_a_bad_body_from_a_known_caller_is_a_422_naming_the_problem(app, users):
    ann = login(app, "ann", users["ann"])
    item = ann.get("/api/items/next").json()["items"][0]["item_id"]
    broken = ann.post(f"/api/items/{item}/label", content=b"{not json", headers=dict([JSON]))
    assert_json_error(broken, 422)
    assert broken.json()["detail"].startswith("body")
    missing = ann.post(f"/api/items/{item}/label")
    assert_json_error(missing, 422)
    assert "body: Field required" in missing.json()["detail"]
    text = ann.post(
        f"/api/items/{item}/label", content=b"yes", headers={"Content-Type": "text/plain"}
    )
    assert_json_error(text, 422)
    assert "application/json" in text.json()["detail"]
    assert ann.post(f"/api/items/{item}/skip").status_code == 200  # a skip needs no body


# --- GET /api/cli/proof: the server proves it holds the CLI token, which is never sent ---


def test_the_server_proves_it_holds_the_cli_token(app, monkeypatch):
    client = TestClient(app)
    nonce = "a-nonce-of-the-command-line"
    answer = client.get("/api/cli/proof", params={"nonce": nonce})
    assert answer.json() == {"proof": forwarding.proof("cli-secret", nonce)}
    assert answer.json()["proof"] != forwarding.proof("another-token", nonce)
    assert_json_error(client.get("/api/cli/proof", params={"nonce": "short"}), 422)
    monkeypatch.setattr(app.state, "cli_token", None)  # an app that takes no commands
    assert_json_error(client.get("/api/cli/proof", params={"nonce": nonce}), 401)


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


# --- the login throttle: slows whoever fails, locks nobody out; atomic and bounded ---


class Clock:
    """A clock the test moves: no sleeping."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def refused(throttle, *args):
    """The seconds ``throttle`` makes this login wait (it must refuse it)."""
    with pytest.raises(RateLimitedError) as info:
        throttle.reserve(*args)
    return info.value.retry_after


def test_failures_slow_their_client_and_name_down_exponentially_up_to_a_cap():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(5):
        throttle.reserve("ann", "10.0.0.66")  # five failures cost nothing
    waits = []
    for _ in range(12):
        waits.append(refused(throttle, "ann", "10.0.0.66"))
        clock.now += waits[-1]
        throttle.reserve("ann", "10.0.0.66")  # fails again
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    throttle.reserve("bob", "10.0.0.66")  # another name from that address is not slowed


def test_failures_from_one_client_never_keep_the_user_out_of_another():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(20):
        with contextlib.suppress(RateLimitedError):
            throttle.reserve("root", "10.0.0.66")
        clock.now += 1
    assert refused(throttle, "root", "10.0.0.66") > 0
    throttle.succeeded(throttle.reserve("root", "10.0.0.7"))  # an address with no failures
    # A browser that logged in as root before, behind the attacker's address.
    cookie = throttle.device_cookie("root")
    throttle.succeeded(throttle.reserve("root", "10.0.0.66", cookie))
    assert refused(throttle, "root", "10.0.0.66", "forged.cookie") > 0  # just the address


def test_one_address_cannot_spray_names_but_its_known_browsers_get_in_and_it_recovers():
    clock = Clock()
    throttle = LoginThrottle(address_failures=50, address_window=600, clock=clock)
    ann_cookie = throttle.device_cookie("ann")
    for i in range(50):
        throttle.reserve(f"name{i}", "10.0.0.1")  # one failure per name: no back-off
        clock.now += 1
    assert refused(throttle, "bob", "10.0.0.1") == 600 - 50  # a new name waits for the window
    throttle.succeeded(throttle.reserve("ann", "10.0.0.1", ann_cookie))  # a known browser
    assert refused(throttle, "bob", "10.0.0.1", ann_cookie) > 0  # ann's cookie is ann's only
    clock.now += 600 - 50 + 1
    throttle.reserve("bob", "10.0.0.1")  # not for ever: old failures leave the window


def test_a_success_forgets_the_failures_and_a_server_error_does_not_count():
    clock = Clock()
    throttle = LoginThrottle(free_failures=2, clock=clock)
    throttle.reserve("ann", "a")
    throttle.reserve("ann", "a")
    assert refused(throttle, "ann", "a") == 1
    clock.now += 1
    throttle.succeeded(throttle.reserve("ann", "a"))
    assert len(throttle) == 1  # the pair is forgotten; the address keeps its two failures
    throttle.reserve("ann", "a")
    throttle.reserve("ann", "a")  # two free failures again
    assert refused(throttle, "ann", "a") == 1
    for _ in range(10):
        throttle.cancel(throttle.reserve("carl", "b"))
    assert throttle.reserve("carl", "b") and throttle.reserve("carl", "b")


def test_parallel_wrong_passwords_get_at_most_five_tries(app, monkeypatch):
    from active_labeling.labeling import auth_routes
    from active_labeling.labeling.auth import AuthError

    def slow_wrong_password(con, name, password):
        time.sleep(0.3)  # every guess is in flight before the first one fails
        raise AuthError("wrong user name or password")

    monkeypatch.setattr(auth_routes, "check_password", slow_wrong_password)
    app.state.throttle = LoginThrottle(clock=Clock())  # the guesses are all at one time
    start = threading.Barrier(20)

    def guess(i):
        client = TestClient(app, raise_server_exceptions=False)
        start.wait()
        return client.post("/api/login", json={"username": "ann", "password": f"guess{i}"})

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as pool:
        codes = [response.status_code for response in pool.map(guess, range(20))]
    assert codes.count(401) == 5 and codes.count(429) == 15, codes


def test_the_throttle_forgets_old_failures_and_stays_bounded():
    clock = Clock()
    throttle = LoginThrottle(max_entries=100, clock=clock)
    for i in range(1000):
        throttle.reserve(f"name{i}", f"10.0.{i // 200}.{i % 200}")
    assert len(throttle) == 200  # 100 clients and names, 100 addresses
    clock.now += 3601
    throttle.reserve("last", "10.9.9.9")
    assert len(throttle) == 2  # 'last' from 10.9.9.9, and that address


def test_a_too_long_user_name_is_refused_before_any_work(app):
    response = TestClient(app).post("/api/login", json={"username": "n" * 201, "password": "x"})
    assert_json_error(response, 422)
    assert "username" in response.json()["detail"]
    assert len(app.state.throttle) == 0


def test_wrong_passwords_from_one_address_do_not_keep_an_admin_out_of_another(app):
    command = app.state.service.cursor_for_command()
    password = add_user(command, "root", "admin")
    command.close()
    attacker = TestClient(app, client=("10.0.0.66", 5000))
    codes = [
        attacker.post("/api/login", json={"username": "root", "password": f"guess{i}"})
        for i in range(7)
    ]
    assert [c.status_code for c in codes] == [401] * 5 + [429] * 2
    admin = TestClient(app, client=("10.0.0.7", 5000))
    response = admin.post("/api/login", json={"username": "root", "password": password})
    assert response.status_code == 200, response.text
    assert codes[-1].headers["Retry-After"] == "1"
    assert "try again in 1 seconds" in codes[-1].json()["detail"]


def test_behind_one_proxy_a_browser_that_logged_in_before_gets_in_during_a_spray(app, users):
    app.state.throttle.address_failures = 5  # a small budget: a short test
    proxy = ("10.0.0.1", 5000)  # every request comes from the proxy's address
    ann = TestClient(app, client=proxy)
    assert ann.post("/api/login", json={"username": "ann", "password": users["ann"]}).is_success
    attacker = TestClient(app, client=proxy)
    sprayed = [
        attacker.post("/api/login", json={"username": name, "password": "x"}).status_code
        for name in ["ann", "bob", "carl", "dan", "eve", "fay"]
    ]
    assert sprayed == [401] * 5 + [429]
    newcomer = TestClient(app, client=proxy)  # no device cookie: waits with the address
    bob = newcomer.post("/api/login", json={"username": "bob", "password": users["bob"]})
    assert_json_error(bob, 429)
    again = ann.post("/api/login", json={"username": "ann", "password": users["ann"]})
    assert again.status_code == 200, again.text


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
