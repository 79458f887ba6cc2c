"""The command line: every command has --help; errors are one line; a CSV becomes a queue."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from active_labeling.cli import build_parser, main

from flow_helpers import declare_train_and_query, make_project, write_labels_csv, write_pool_csv


def _subcommand_paths(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


COMMANDS = list(_subcommand_paths(build_parser()))


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: active-labeling" in capsys.readouterr().out


def test_a_newcomer_goes_from_a_csv_to_a_ranked_queue(tmp_path, capsys):
    project = str(tmp_path / "proj")
    pool = write_pool_csv(tmp_path / "pool.csv", 200)
    ids = [f"I{i}" for i in range(0, 200, 10)]
    labels = write_labels_csv(tmp_path / "labels.csv", ids, ["yes", "no"] * 10)
    steps = [
        ["init", project, "--classes", "yes,no", "--id-column", "id"],
        ["dataset", "import", project, "pool", str(pool)],
        ["dataset", "list", project],
        ["dataset", "show", project, "pool"],
        ["labels", "import", project, str(labels)],
        [
            "recipe",
            "add",
            project,
            "train-model",
            "train",
            "--input",
            "dataset=pool",
            "--input",
            "labels=labels",
            "--output",
            "model=clf",
        ],
        [
            "recipe",
            "add",
            project,
            "query-sampler",
            "query",
            "--input",
            "pool=pool",
            "--input",
            "model=clf",
            "--output",
            "queue=queue",
            "--param",
            "queue_size=12",
            "--param",
            "strategy=wkmeans",
            "--param",
            'strategy_params={"beta": 5}',
        ],
        ["recipe", "list", project],
        ["run", project, "train", "--quiet"],
        ["run", project, "query", "--quiet"],
        ["models", "list", project],
        ["queue", "show", project, "--top", "3"],
        ["labels", "export", project, str(tmp_path / "labels-out.parquet")],
        ["dataset", "export", project, "pool", str(tmp_path / "pool-out.csv")],
        ["strategies"],
    ]
    for step in steps:
        assert main(step) == 0, step
    out = capsys.readouterr().out
    assert "dataset 'pool' imported: 200 rows" in out
    assert "imported 20 labels" in out
    assert "12 items ranked by wkmeans among 180 unlabeled" in out
    assert "clf\tversions 1" in out
    assert "queue 'queue', generation 1 (dataset 'pool'), top 3:" in out
    assert (tmp_path / "labels-out.parquet").is_file() and (tmp_path / "pool-out.csv").is_file()


def test_errors_are_one_line_with_status_one(tmp_path, capsys):
    assert main(["dataset", "list", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    from active_labeling.errors import InputError

    with pytest.raises(InputError):
        main(["--debug", "dataset", "list", str(tmp_path / "nowhere")])


def test_the_installed_command_runs(tmp_path):
    script = Path(sys.executable).with_name("active-labeling")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "active_labeling.cli"]
    result = subprocess.run(
        [*command, "init", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    bad = subprocess.run(
        [*command, "init", str(tmp_path / "p")], capture_output=True, text=True, timeout=120
    )
    assert (
        bad.returncode == 1 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    )


def test_the_store_and_the_files_a_command_writes_are_private_to_their_owner(tmp_path, capsys):
    import stat

    previous = os.umask(0o022)
    try:
        project = tmp_path / "proj"
        assert main(["init", str(project)]) == 0
        assert main(["user", "add", str(project), "ann", "--role", "admin"]) == 0
        for name in ("store.duckdb", "project.toml"):
            assert stat.S_IMODE((project / name).stat().st_mode) == 0o600, name
        assert stat.S_IMODE(project.stat().st_mode) == 0o700
        assert os.umask(0o022) == 0o022  # main gave the umask back
    finally:
        os.umask(previous)


def test_queue_show_picks_the_only_queue_and_names_the_queues_otherwise(tmp_path, capsys):
    from active_labeling.store import queue

    project = make_project(tmp_path / "proj", n=60, n_labels=10)
    root = str(project.root)
    assert main(["queue", "show", root]) == 1
    assert "error: no queue yet: add a query-sampler recipe" in capsys.readouterr().err
    declare_train_and_query(project, queue_size=5)
    assert main(["queue", "show", root]) == 1
    assert "queue 'queue' has no generation yet: run its recipe (`active-labeling run" in (
        capsys.readouterr().err
    )
    assert main(["run", root, "train", "--quiet"]) == main(["run", root, "query", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["queue", "show", root, "--top", "2"]) == 0  # the only queue
    assert "queue 'queue', generation 1 (dataset 'pool'), top 2:" in capsys.readouterr().out
    assert main(["queue", "show", root, "--queue", "nope"]) == 1
    assert "no queue 'nope' in this project (queues: queue)" in capsys.readouterr().err
    with project.connect() as con:
        queue.write_generation(
            con,
            queue="review",
            dataset="pool",
            item_ids=["I1"],
            scores=None,
            strategy="random",
            model_name=None,
            model_version=None,
            params={},
            pool_rows=60,
        )
    assert main(["queue", "show", root]) == 1
    assert "several queues (queue, review): pick one with --queue" in capsys.readouterr().err
    assert main(["queue", "show", root, "--queue", "review"]) == 0


def test_dataset_import_over_an_existing_name_needs_replace_and_keeps_its_id_column(
    tmp_path, capsys
):
    project = str(tmp_path / "proj")
    first = write_pool_csv(tmp_path / "first.csv", 100)
    assert main(["init", project, "--classes", "yes,no"]) == 0
    assert main(["dataset", "import", project, "pool", str(first), "--id-column", "id"]) == 0
    labels = write_labels_csv(tmp_path / "l.csv", ["I5", "I50", "I90"], ["yes", "no", "yes"])
    assert main(["labels", "import", project, str(labels)]) == 0
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("".join(first.read_text().splitlines(keepends=True)[:61]))  # I0..I59
    capsys.readouterr()
    assert main(["dataset", "import", project, "pool", str(smaller)]) == 1
    err = capsys.readouterr().err
    assert "error: dataset 'pool' exists already (100 rows): pass --replace" in err
    assert main(["dataset", "import", project, "pool", str(smaller), "--replace"]) == 0
    out, err = capsys.readouterr()
    # The ids still come from 'id', as when the dataset was first imported.
    assert "dataset 'pool' replaced (copied): 60 rows (was 100), 4 columns, ids from 'id'" in out
    assert "warning: 1 of the 3 labeled items of dataset 'pool' are not in it any more" in err
    assert "hold other values" not in err and "row positions" not in err


# --- serve.json: the token goes only to the project's own server ---------------------------


class FakeServer:
    """Some other process's HTTP server on a port of 127.0.0.1: it records every request and
    answers each with ``answer`` (status, JSON, and any (header, value) pairs)."""

    def __init__(self, answer=(200, {"proof": "0" * 64, "code": 0, "stdout": "", "stderr": ""})):
        import http.server
        import json
        import threading

        self.requests = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), body))
                status, payload, *headers = answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def saw(self, secret: str) -> bool:
        return any(secret in repr(request) for request in self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server():
    servers = []

    def start(**kwargs):
        servers.append(FakeServer(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def small_project(tmp_path):
    from flow_helpers import make_project

    return make_project(tmp_path / "p", n=20, n_labels=0).root


def test_a_stale_serve_json_whose_pid_and_port_live_on_runs_the_command_here(
    small_project, fake_server, capsys
):
    from active_labeling.labeling.forwarding import write_server_file

    fake = fake_server()
    # The test's own pid: alive, and not a server (a pid reused after the server died).
    marker = write_server_file(small_project, fake.url, "the-cli-token")
    assert main(["dataset", "show", str(small_project), "pool"]) == 0
    captured = capsys.readouterr()
    assert "dataset 'pool': 20 rows" in captured.out  # run here, on the store
    assert "no longer runs" in captured.err and str(marker) in captured.err
    assert not marker.exists()  # removed: the next command does not even look
    assert not fake.requests  # the lock told: nothing was sent anywhere


@pytest.mark.parametrize(
    "answer",
    [
        (200, {"proof": "0" * 64, "code": 0, "stdout": "forged", "stderr": ""}),
        (404, {"detail": "Not Found"}),
        (200, ["not", "a", "proof"]),
    ],
    ids=["wrong proof", "404", "nonsense"],
)
def test_a_listener_that_does_not_prove_it_is_the_server_never_gets_the_token(
    small_project, fake_server, capsys, answer
):
    from active_labeling.labeling.forwarding import server_lock, write_server_file

    fake = fake_server(answer=answer)
    with server_lock(small_project):  # a live server holds the lock, another process the port
        marker = write_server_file(small_project, fake.url, "the-cli-token")
        assert main(["dataset", "show", str(small_project), "pool"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did not prove" in err and "nothing was sent" in err
    assert marker.exists()  # the server is alive: its file stays
    assert not fake.saw("the-cli-token")
    assert [(method, path.split("?")[0]) for method, path, *_ in fake.requests] == [
        ("GET", "/api/cli/proof")
    ]


def test_a_server_that_does_not_answer_at_all_gets_no_command(small_project, capsys):
    import socket

    from active_labeling.labeling.forwarding import server_lock, write_server_file

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    with server_lock(small_project):  # still starting: it has the lock, not the port yet
        write_server_file(small_project, url, "the-cli-token")
        assert main(["dataset", "show", str(small_project), "pool"]) == 1
    assert "once the server has started" in capsys.readouterr().err


def test_a_command_goes_to_the_server_of_serve_json_and_nowhere_else(fake_server, monkeypatch):
    from active_labeling.labeling.forwarding import forward

    elsewhere = fake_server()
    monkeypatch.setenv("http_proxy", elsewhere.url)  # a proxy from the environment
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    ours = fake_server(answer=(200, {"code": 0, "stdout": "done", "stderr": ""}))
    assert forward(["queue", "show", "p"], {"url": ours.url, "cli_token": "tok"})[:2] == (
        0,
        "done",
    )
    assert ours.saw("tok") and not elsewhere.requests
    # A redirect is not followed: the token stays with the server of serve.json.
    moved = fake_server(answer=(302, {}, ("Location", elsewhere.url + "api/cli")))
    code, _, err = forward(["queue", "show", "p"], {"url": moved.url, "cli_token": "tok"})
    assert code == 1 and "302" in err
    assert not elsewhere.requests


def test_the_strategy_list_is_the_registry():
    """`strategies` prints a static table (no scikit-learn): it names every strategy of the
    registry, in its order, with its class's summary line."""
    from active_labeling.samplers.registry import STRATEGIES
    from active_labeling.strategy_list import STRATEGY_SUMMARIES

    assert list(STRATEGY_SUMMARIES) == list(STRATEGIES)
    for name, cls in STRATEGIES.items():
        assert STRATEGY_SUMMARIES[name] == (cls.__doc__ or "").strip().splitlines()[0], name


def test_help_and_strategies_load_no_heavy_library():
    """Importing the command and building its parser, and the `strategies` command, load
    neither scikit-learn, pandas, matplotlib nor FastAPI (they took 2 s before any help)."""
    heavy = ("sklearn", "matplotlib", "pandas", "scipy", "fastapi", "duckdb")
    probe = (
        "import sys\n"
        "from active_labeling import cli\n"
        "cli.build_parser()\n"
        "cli.main(['strategies'])\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert "margin" in done.stdout and "auto" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout


def test_a_forwarded_command_prints_in_the_callers_terminal_while_it_runs(
    small_project, monkeypatch
):
    """What a command prints on the server (its progress bars) reaches the caller as it is
    printed, not once the command has ended (nor in the server's own terminal)."""
    import socket
    import threading
    import time

    import uvicorn

    from active_labeling.labeling import forwarding
    from active_labeling.labeling.app import create_app

    seen, ended = threading.Event(), threading.Event()

    def slow_command(args, stderr):
        sys.stderr.write("scoring pool:  50%\r")  # as a progress bar does
        seen.wait(timeout=10)  # the caller saw it, or the test fails below
        sys.stdout.write("queue written\n")
        ended.set()
        return 0

    monkeypatch.setattr(forwarding, "_dispatch", slow_command)

    class Terminal(list):
        def write(self, text):
            self.append((text, ended.is_set()))
            if "50%" in text:
                seen.set()

        def flush(self):
            pass

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(small_project, cli_token="tok", scheduler=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        out, err = Terminal(), Terminal()
        url = f"http://127.0.0.1:{port}/"
        code, stdout, stderr = forward_with(["queue", "show", str(small_project)], url, out, err)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert code == 0 and stdout == "queue written\n" and "50%" in stderr
    assert err == [("scoring pool:  50%\r", False)]  # before the command ended
    assert out == [("queue written\n", True)]


def forward_with(argv, url, out, err):
    from active_labeling.labeling.forwarding import forward

    return forward(argv, {"url": url, "cli_token": "tok"}, out=out, err=err)


def _options(parser, prefix=()):
    """(command path, option action) of every option of every command."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, (*prefix, name))
        elif action.option_strings and action.help is not argparse.SUPPRESS:
            yield prefix, action


def test_every_option_with_a_default_says_it_in_its_help():
    """`serve --host` and `--port` had no help at all: every option is explained, and one
    whose default is a value (not off, not unset) shows it."""
    silent = [
        f"{' '.join(path)} {action.option_strings[-1]}"
        for path, action in _options(build_parser())
        if action.dest not in ("help", "version")
        and (
            not action.help
            or (
                action.default not in (None, False, [], argparse.SUPPRESS)
                and str(action.default) not in action.help % {"default": action.default}
            )
        )
    ]
    assert silent == []


def test_users_and_tokens_are_managed_from_the_command_line(tmp_path, capsys):
    """user add / list / set-password / set-role / remove and token create / list / revoke:
    a new password ends the browser sessions and leaves the tokens; revoking or removing
    takes the access away at once."""
    from active_labeling.flow.project import Project
    from active_labeling.labeling.auth import (
        AuthError,
        check_password,
        open_session,
        session_user,
        token_id,
        token_user,
    )

    root = str(tmp_path / "p")
    assert main(["init", root]) == 0
    assert main(["user", "add", root, "ann"]) == 0
    password = capsys.readouterr().out.splitlines()[-1]
    assert main(["user", "add", root, "ann", "--role", "admin"]) == 1
    assert "exists already" in capsys.readouterr().err  # no silent reset, no role change
    assert main(["token", "create", root, "ann"]) == 0
    token = capsys.readouterr().out.splitlines()[-1]
    with Project.open(root).connect() as con:
        session, _ = open_session(con, check_password(con, "ann", password))
    assert main(["user", "list", root]) == 0
    assert "ann\tlabeler\t" in (out := capsys.readouterr().out)
    assert "1 browser session(s)\t1 API token(s)" in out
    assert main(["token", "list", root]) == 0
    assert capsys.readouterr().out.startswith(f"{token_id(token)}\tann\tcreated ")

    assert main(["user", "set-password", root, "ann"]) == 0
    new_password = capsys.readouterr().out.splitlines()[-1]
    with Project.open(root).connect(read_only=True) as con:
        assert session_user(con, session) is None  # logged out everywhere
        assert token_user(con, token).name == "ann"  # the token stays
        with pytest.raises(AuthError):
            check_password(con, "ann", password)
        assert check_password(con, "ann", new_password).role == "labeler"  # role kept

    assert main(["token", "revoke", root, token_id(token)]) == 0
    assert "1 API token(s) revoked" in capsys.readouterr().out
    with Project.open(root).connect(read_only=True) as con:
        assert token_user(con, token) is None
    assert main(["token", "revoke", root, token_id(token)]) == 1  # gone: said, not silent
    assert "no API token" in capsys.readouterr().err

    assert main(["token", "create", root, "ann"]) == 0
    second = capsys.readouterr().out.splitlines()[-1]
    assert main(["user", "set-role", root, "ann", "reviewer"]) == 0
    with Project.open(root).connect(read_only=True) as con:
        assert token_user(con, second).role == "reviewer"
    assert main(["user", "remove", root, "ann"]) == 0
    assert "1 API token(s) revoked" in capsys.readouterr().out
    with Project.open(root).connect(read_only=True) as con:
        assert token_user(con, second) is None
    assert main(["user", "list", root]) == 0
    assert "no user yet" in capsys.readouterr().out
    assert main(["user", "remove", root, "ann"]) == 1
    assert "error: no user 'ann' (users: none yet)" in capsys.readouterr().err


def test_labels_for_a_dataset_imported_without_ids_say_what_its_ids_are(tmp_path, capsys):
    root = str(tmp_path / "p")
    pool = write_pool_csv(tmp_path / "pool.csv", 20)
    labels = write_labels_csv(tmp_path / "labels.csv", ["I3", "I4"], ["yes", "no"])
    assert main(["init", root, "--classes", "yes,no"]) == 0  # no --id-column
    assert main(["dataset", "import", root, "pool", str(pool)]) == 0
    capsys.readouterr()
    assert main(["labels", "import", root, str(labels)]) == 1
    err = capsys.readouterr().err
    assert "row 1: id 'I3' is not an item of dataset 'pool'" in err
    assert "row positions 1, 2, ..." in err and "--replace --id-column" in err
    assert (
        main(["dataset", "import", root, "pool", str(pool), "--replace", "--id-column", "id"]) == 0
    )
    assert main(["labels", "import", root, str(labels)]) == 0


def test_the_guide_is_set_and_shown_from_the_command_line(tmp_path, capsys):
    root = str(tmp_path / "p")
    assert main(["init", root, "--classes", "spam,ham"]) == 0
    assert main(["guide", "show", root]) == 0
    assert "no guide yet" in capsys.readouterr().out
    task = tmp_path / "task.txt"
    task.write_text("Is this email spam?\nLook at the sender first.\n", encoding="utf-8")
    assert (
        main(["guide", "set", root, "--task-file", str(task), "--class", "spam=unsolicited"]) == 0
    )
    assert main(["guide", "set", root, "--class", "ham=wanted mail"]) == 0  # the task stays
    capsys.readouterr()
    assert main(["guide", "show", root]) == 0
    out = capsys.readouterr().out
    assert "task: Is this email spam?\nLook at the sender first." in out
    assert "  spam: unsolicited\n  ham: wanted mail\n" in out
    assert main(["guide", "set", root, "--class", "eggs=?"]) == 1
    assert "guidance for 'eggs': not one of the project's classes" in capsys.readouterr().err
    assert main(["guide", "set", root, "--clear", "--task", "Spam or not?"]) == 0
    capsys.readouterr()
    assert main(["guide", "show", root]) == 0
    out = capsys.readouterr().out
    assert "task: Spam or not?" in out and "  spam: (no guidance)" in out
