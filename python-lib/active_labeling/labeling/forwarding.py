"""CLI commands while the server runs: the server owns the store, so it runs them.

DuckDB admits one writing process. While ``active-labeling serve`` runs, every other
``active-labeling`` command on that project (labels import, run, queue show, user add...)
is sent to the server, which runs it in its own process on its own connection and sends
back the exit code and the output. The command line is the API: nothing is duplicated.

The server writes ``serve.json`` beside the store (mode 0600): its process id, its URL and
a random token that only this route accepts. Whoever may read that file may already read
the store itself, so the token grants nothing new.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import ssl
import threading
import urllib.error
import urllib.request
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from active_labeling.errors import ActiveLabelingError
from active_labeling.labeling.auth import AuthError, ForbiddenError, same_secret
from active_labeling.labeling.dependencies import json_body
from active_labeling.store.connection import SERVER_FILE

#: Commands that never go to the server: they do not use the store, or they are the server.
LOCAL_COMMANDS = {"init", "serve", "strategies", "experiment"}
#: Arguments that name files or folders: resolved against the caller's working directory.
PATH_ARGUMENTS = ("project", "file", "output", "out", "config", "directory")
#: Commands that write label events: run under the labeling service's lock.
LABEL_WRITERS = {"labels"}
CLI_TOKEN_HEADER = "X-CLI-Token"

router = APIRouter(tags=["cli"])
_run_lock = threading.Lock()  # one forwarded command at a time (stdout is process-wide)


def new_cli_token() -> str:
    return secrets.token_urlsafe(32)


def write_server_file(project: Path, url: str, token: str) -> Path:
    """serve.json beside the store, readable by its owner only, written atomically."""
    marker = Path(project) / SERVER_FILE
    temporary = marker.with_name(f".{SERVER_FILE}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"pid": os.getpid(), "url": url, "cli_token": token}, handle)
    os.replace(temporary, marker)
    return marker


def running_server(project: Path) -> dict | None:
    """serve.json of a server that is alive, else None (a stale file is ignored)."""
    marker = Path(project) / SERVER_FILE
    try:
        info = json.loads(marker.read_text())
        pid, url, token = int(info["pid"]), str(info["url"]), str(info["cli_token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, someone else's
    return {"pid": pid, "url": url, "cli_token": token}


def local_url(url: str) -> str:
    """The server's URL as seen from this machine (a wildcard address means loopback)."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


def forward(argv: list[str], server: dict, *, timeout: float = 3600.0) -> tuple[int, str, str]:
    """Send a command line to the server; (exit code, stdout, stderr)."""
    body = json.dumps({"argv": list(argv), "cwd": os.getcwd()}).encode()
    request = urllib.request.Request(
        local_url(server["url"]).rstrip("/") + "/api/cli",
        data=body,
        headers={"Content-Type": "application/json", CLI_TOKEN_HEADER: server["cli_token"]},
        method="POST",
    )
    context = None
    if request.full_url.startswith("https:"):
        # The URL and the token come from the server's own file on this machine.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        return 1, "", f"error: the server refused the command ({exc.code}): {detail}\n"
    except (urllib.error.URLError, OSError) as exc:
        return 1, "", f"error: the server at {server['url']} did not answer: {exc}\n"
    return int(answer["code"]), answer["stdout"], answer["stderr"]


class CliCommand(BaseModel):
    argv: list[str] = Field(max_length=200)
    cwd: str


def cli_caller(request: Request) -> None:
    """The caller sent the token of the server's serve.json."""
    expected = request.app.state.cli_token
    sent = request.headers.get(CLI_TOKEN_HEADER, "")
    if not expected or not same_secret(sent, expected):
        raise AuthError(f"this route takes the {CLI_TOKEN_HEADER} of the server's serve.json")


#: The command line, read once the token is checked (see json_body).
command_body = json_body(CliCommand, caller=cli_caller)


@router.post("/api/cli", include_in_schema=False)
def run_command(request: Request, body: CliCommand = Depends(command_body)):
    """Run an ``active-labeling`` command line in this process, on the server's store."""
    from active_labeling import cli
    from active_labeling.flow.project import shared_store

    parser = cli.build_parser()
    stdout, stderr = io.StringIO(), io.StringIO()
    service = request.app.state.service
    store = Path(service.project.store_path).resolve()
    # sys.stdout and sys.stderr are process-wide: they are redirected only under the lock,
    # parsing included (--help and --version print; a bad command line prints its usage).
    with _run_lock:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                args = parser.parse_args(body.argv)
            except SystemExit as exc:  # argparse printed the usage, the help or the version
                code = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
                return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
        if args.command in LOCAL_COMMANDS:
            raise ForbiddenError(f"`{args.command}` does not run through the server")
        for name in PATH_ARGUMENTS:
            value = getattr(args, name, None)
            if isinstance(value, str) and value and not os.path.isabs(value):
                setattr(args, name, os.path.join(body.cwd, value))
        writes_labels = args.command in LABEL_WRITERS
        guard = service.lock if writes_labels else contextlib.nullcontext()
        with (
            guard,
            shared_store(store, service.cursor_for_command),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            code = _dispatch(args, stderr)
        service.reload()  # labels or queues may have changed behind the handout's index
    return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}


def _dispatch(args, stderr: io.StringIO) -> int:
    try:
        return int(args.handler(args) or 0)
    except ActiveLabelingError as exc:
        print(f"error: {exc}", file=stderr)
        return 1
