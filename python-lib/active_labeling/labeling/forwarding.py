"""CLI commands while the server runs: the server owns the store, so it runs them.

DuckDB admits one writing process. While ``active-labeling serve`` runs, every other
``active-labeling`` command on that project (labels import, run, queue show, user add...)
is sent to the server, which runs it in its own process on its own connection and sends
back the exit code and the output. The command line is the API: nothing is duplicated.

The server writes ``serve.json`` beside the store (mode 0600): its process id, its URL and
a random token that only this route accepts. Whoever may read that file may already read
the store itself, so the token grants nothing new. The file outlives a killed server, and
its process id may then belong to any process, its port to any listener: so the server
holds a lock on ``serve.lock`` while it runs (the system drops it when the process dies),
and before it gets the token a server must prove it is the one of serve.json, with an HMAC
of the caller's random nonce keyed with the token. A serve.json with no lock held is stale:
removed, and the command runs on the store directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import logging
import os
import queue
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from active_labeling.cli import LOCAL_COMMANDS
from active_labeling.errors import ActiveLabelingError, StoreLockedError
from active_labeling.labeling.auth import AuthError, ForbiddenError, same_secret
from active_labeling.labeling.dependencies import json_body
from active_labeling.store.connection import SERVER_FILE

#: Arguments that name files or folders: resolved against the caller's working directory.
PATH_ARGUMENTS = ("project", "file", "output", "out", "config", "directory")
#: Commands that write label events: run under the labeling service's lock.
LABEL_WRITERS = {"labels"}
CLI_TOKEN_HEADER = "X-CLI-Token"
#: Locked by the server while it runs, beside serve.json; never removed.
SERVER_LOCK = "serve.lock"
PROOF_PATH = "/api/cli/proof"

log = logging.getLogger(__name__)
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


@contextlib.contextmanager
def server_lock(project: Path) -> Iterator[None]:
    """Hold serve.lock: from before serve.json is written to after the server stops.

    Waits for it: a command looking at serve.json holds it shared for a moment (a second
    server of the project would not get this far: the first one holds the store).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX: the proof alone tells
        yield
        return
    descriptor = os.open(Path(project) / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # and the lock with it


def _remove_if_stale(project: Path) -> bool | None:
    """Remove serve.json if no server holds serve.lock: True if it was stale (removed),
    False if a server holds the lock, None if this system cannot tell (no flock, or the
    lock file cannot be opened).

    The lock is held shared meanwhile: no server writes serve.json between the look and the
    removal (it writes it under the lock).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    try:
        descriptor = os.open(Path(project) / SERVER_LOCK, os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError:  # a folder this user may not write to
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        (Path(project) / SERVER_FILE).unlink(missing_ok=True)
        return True
    finally:
        os.close(descriptor)


def proof(token: str, nonce: str) -> str:
    """What the server answers to a nonce: only who holds the token can compute it."""
    message = b"active-labeling serve.json proof\0" + nonce.encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def _proves_itself(server: dict, timeout: float = 5.0) -> str | None:
    """None if the server at serve.json's URL proves it holds the token, else why not.

    The token is not sent: a listener that is not our server learns nothing."""
    nonce = secrets.token_urlsafe(24)
    query = urllib.parse.urlencode({"nonce": nonce})
    url = local_url(server["url"]).rstrip("/") + f"{PROOF_PATH}?{query}"
    try:
        with _opener(url).open(url, timeout=timeout) as response:
            answer = json.loads(response.read(4096))
        sent = answer["proof"]
    except urllib.error.HTTPError as exc:
        return f"it answered {exc.code}"
    except (OSError, ValueError, KeyError, TypeError) as exc:  # URLError is an OSError
        return f"it did not answer: {exc}"
    if not isinstance(sent, str) or not hmac.compare_digest(
        sent, proof(server["cli_token"], nonce)
    ):
        return "its answer was wrong"
    return None


def running_server(project: Path, notice: Callable[[str], None] = lambda text: None) -> dict | None:
    """serve.json of the project's server, once the server proved it is the one; None when
    no server runs (a stale file is removed, and ``notice`` told why).

    Raises StoreLockedError when a server holds serve.lock but the URL does not prove to be
    it (it is starting, or another process has its port): the token is not sent.
    """
    marker = Path(project) / SERVER_FILE
    try:
        info = json.loads(marker.read_text())
        server = {"pid": int(info["pid"]), "url": str(info["url"])}
        server["cli_token"] = str(info["cli_token"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    stale = _remove_if_stale(project)
    if stale:
        notice(
            f"note: {marker} was left by a server that no longer runs (process "
            f"{server['pid']}); removed it, the command runs here"
        )
        return None
    refused = _proves_itself(server)
    if refused is None:
        return server
    if stale is None:  # cannot tell: not proven, so not ours; the store's lock says the rest
        notice(f"note: {server['url']} of {marker} is not this project's server ({refused})")
        return None
    raise StoreLockedError(
        f"the labeling server of {project} (process {server['pid']}) holds {SERVER_LOCK}, but "
        f"{server['url']} did not prove to be it ({refused}); nothing was sent to it. Try again "
        "once the server has started, or stop it"
    )


def local_url(url: str) -> str:
    """The server's URL as seen from this machine (a wildcard address means loopback)."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        url = url.replace(wildcard, "//127.0.0.1:")
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect is answered as an error: headers never go elsewhere


def _opener(url: str) -> urllib.request.OpenerDirector:
    """To the server of serve.json, and nowhere else: no proxy from the environment (it
    would get the token), no redirect."""
    handlers: list = [urllib.request.ProxyHandler({}), _NoRedirect()]
    if url.startswith("https:"):
        # The URL and the token come from the server's own file on this machine.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def forward(
    argv: list[str],
    server: dict,
    *,
    timeout: float = 3600.0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> tuple[int, str, str]:
    """Send a command line to the server; (exit code, stdout, stderr).

    With ``out`` and ``err``, what the command prints is also written there as the server
    sends it, so that its progress bars move in the caller's terminal while it runs.
    """
    body = json.dumps({"argv": list(argv), "cwd": os.getcwd()}).encode()
    request = urllib.request.Request(
        local_url(server["url"]).rstrip("/") + "/api/cli",
        data=body,
        headers={
            "Content-Type": "application/json",
            "Accept": f"{STREAM_TYPE}, application/json",
            CLI_TOKEN_HEADER: server["cli_token"],
        },
        method="POST",
    )
    try:
        with _opener(request.full_url).open(request, timeout=timeout) as response:
            if response.headers.get_content_type() == STREAM_TYPE:
                return _read_stream(response, out, err)
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        return 1, "", f"error: the server refused the command ({exc.code}): {detail}\n"
    except (urllib.error.URLError, OSError) as exc:
        return 1, "", f"error: the server at {server['url']} did not answer: {exc}\n"
    for text, stream in ((answer["stdout"], out), (answer["stderr"], err)):
        if stream is not None and text:
            stream.write(text)
    return int(answer["code"]), answer["stdout"], answer["stderr"]


def _read_stream(response, out: TextIO | None, err: TextIO | None) -> tuple[int, str, str]:
    """The lines of a streamed answer, echoed to ``out``/``err`` as they arrive."""
    printed: dict[str, list[str]] = {"stdout": [], "stderr": []}
    streams = {"stdout": out, "stderr": err}
    for line in response:
        event = json.loads(line)
        if "code" in event:
            return int(event["code"]), "".join(printed["stdout"]), "".join(printed["stderr"])
        for name, text in event.items():
            if name not in printed:
                continue
            printed[name].append(text)
            if streams.get(name) is not None:
                streams[name].write(text)
                streams[name].flush()
    ended = "error: the server stopped answering before the command ended\n"
    if err is not None:
        err.write(ended)
    return 1, "".join(printed["stdout"]), "".join(printed["stderr"]) + ended


@router.get(PROOF_PATH, include_in_schema=False)
def prove(request: Request, nonce: str = Query(min_length=16, max_length=128)):
    """Prove to a command that this is the server of serve.json (see :func:`proof`)."""
    token = request.app.state.cli_token
    if not token:
        raise AuthError("this server takes no commands")
    return {"proof": proof(token, nonce)}


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


#: The media type of a streamed answer: one JSON object a line, ``{"stdout": text}`` or
#: ``{"stderr": text}`` as the command prints, then ``{"code": exit status}``.
STREAM_TYPE = "application/x-ndjson"


class _Relay(io.TextIOBase):
    """A text stream whose writes are sent to the caller as they happen (progress bars)."""

    def __init__(self, name: str, events: queue.Queue):
        self.name = name
        self.events = events

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self.events.put({self.name: text})
        return len(text)


@router.post("/api/cli", include_in_schema=False)
def run_command(request: Request, body: CliCommand = Depends(command_body)):
    """Run an ``active-labeling`` command line in this process, on the server's store.

    The answer is ``{code, stdout, stderr}`` once the command ended; a caller that accepts
    ``application/x-ndjson`` gets what the command prints as it prints it instead (its
    progress bars move in the caller's terminal), then the exit code.
    """
    from active_labeling import cli

    parser = cli.build_parser()
    stdout, stderr = io.StringIO(), io.StringIO()
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
    service = request.app.state.service
    if STREAM_TYPE not in request.headers.get("accept", ""):
        code = _execute(args, service, stdout, stderr)
        return {"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
    events: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            code = _execute(args, service, _Relay("stdout", events), _Relay("stderr", events))
        except BaseException as exc:  # a bug: logged here, the caller gets one line
            log.error("forwarded command %s failed", body.argv, exc_info=exc)
            events.put({"stderr": "error: the server failed on this command; its log says why\n"})
            code = 1
        events.put({"code": code})

    threading.Thread(target=work, name="cli-command", daemon=True).start()
    return StreamingResponse(_stream(events), media_type=STREAM_TYPE)


def _stream(events: queue.Queue) -> Iterator[bytes]:
    while True:
        event = events.get()
        yield (json.dumps(event) + "\n").encode()
        if "code" in event:
            return


def _execute(args, service, stdout: io.TextIOBase, stderr: io.TextIOBase) -> int:
    """Run a parsed command under the lock, its output redirected to ``stdout``/``stderr``."""
    from active_labeling.flow.project import shared_store

    store = Path(service.project.store_path).resolve()
    writes_labels = args.command in LABEL_WRITERS
    guard = service.lock if writes_labels else contextlib.nullcontext()
    with (
        _run_lock,
        guard,
        shared_store(store, service.cursor_for_command),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        code = _dispatch(args, stderr)
    service.reload()  # labels or queues may have changed behind the handout's index
    return code


def _dispatch(args, stderr) -> int:
    try:
        return int(args.handler(args) or 0)
    except ActiveLabelingError as exc:
        print(f"error: {exc}", file=stderr)
        return 1
