"""The labeling web app: the FastAPI application the ``serve`` command runs.

It owns the project store while it runs. Every response carries a strict
Content-Security-Policy (no inline script), nosniff and no framing; every error is JSON
``{error, detail}``. Static files come from the plugin's ``webapps/labeling/static``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from active_labeling import __version__
from active_labeling.errors import ActiveLabelingError, InputError, StoreLockedError
from active_labeling.flow.descriptors import plugin_root
from active_labeling.flow.project import Project
from active_labeling.labeling import (
    admin_routes,
    auth_routes,
    dashboard,
    forwarding,
    item_routes,
    review_routes,
)
from active_labeling.labeling.auth import (
    AuthError,
    ForbiddenError,
    LoginThrottle,
    RateLimitedError,
    User,
)
from active_labeling.labeling.body_limit import BodyLimit, BodyTooLarge, refusal
from active_labeling.labeling.dependencies import current_user
from active_labeling.labeling.review import ReviewDesk
from active_labeling.labeling.service import (
    DEFAULT_LEASE_MINUTES,
    ConflictError,
    LabelingService,
    NotFoundError,
)

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
        "object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

#: The largest request body, in bytes, of every route but those in MAX_BODY: a label with a
#: comment of 2,000 characters and 200 classes is well under it.
DEFAULT_MAX_BODY = 64 * 1024
MAX_BODY = {
    "/api/login": 16 * 1024,  # a name of 200 characters and a password of 1,024, escaped
    "/api/cli": 1024 * 1024,  # a command line (paths, options): 200 arguments at most
    # The guide: a task of 4,000 characters and 200 classes of 1,000, escaped.
    "/api/admin/guide": 1024 * 1024,
}

_STATUS = [
    (AuthError, 401),
    (ForbiddenError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (RateLimitedError, 429),
    (StoreLockedError, 503),
    (InputError, 422),
]


def _error(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a refusal: logged with its traceback; the client learns nothing of it."""
    log.error(
        "%s %s failed: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc
    )
    response = _error(500, "internal", "the server failed on this request; its log says why")
    response.headers.update(SECURITY_HEADERS)
    return response


def static_dir() -> Path:
    return plugin_root() / "webapps" / "labeling" / "static"


def create_app(
    project_root: Path | str,
    *,
    dataset: str | None = None,
    queue: str | None = None,
    lease_minutes: float = DEFAULT_LEASE_MINUTES,
    secure_cookies: bool = False,
    media_column: str | None = None,
    columns: list[str] | None = None,
    cli_token: str | None = None,
    scheduler: bool = False,
    scheduler_poll_seconds: float = 10.0,
) -> FastAPI:
    """The app for one project. It opens the store for writing and keeps it open."""
    project = Project.open(project_root)
    con = project.connect()
    service = LabelingService(
        project,
        con,
        dataset=dataset,
        queue=queue,
        lease_minutes=lease_minutes,
        media_column=media_column,
        columns=columns,
    )
    app = FastAPI(
        lifespan=_lifespan,
        title="active-labeling",
        version=__version__,
        description="Label the items of a ranked queue; every action is an event in the store.",
        # Their pages need an inline script and a CDN, which the CSP forbids: the schema
        # stays at /openapi.json.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    app.state.review = ReviewDesk(service)
    app.state.throttle = LoginThrottle()
    app.state.secure_cookies = secure_cookies
    app.state.cli_token = cli_token
    app.state.server_file = None  # serve.json, removed at shutdown (set by `serve`)
    app.state.scheduler = None
    if scheduler:
        # The project's scenarios run in this process, on cursors of the server's own
        # connection; a new queue generation is handed out at the next request.
        from active_labeling.flow.scenarios import ScenarioRunner, Scheduler

        runner = ScenarioRunner(project, service.cursor_for_command, on_generation=service.refresh)
        app.state.scheduler = Scheduler(
            runner, poll_seconds=scheduler_poll_seconds, on_generation=service.refresh
        )

    # Inside the middleware below, which adds the headers to its 413, and which would wrap
    # the BodyTooLarge of a route reading its body in an ExceptionGroup (its receive runs in
    # a task group): FastAPI lets only a bare HTTPException through, else it answers 400.
    app.add_middleware(BodyLimit, default=DEFAULT_MAX_BODY, caps=MAX_BODY)

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        try:
            response = await call_next(request)
        except Exception as exc:  # a bug: answered here, so it gets the headers below
            response = _internal_error(request, exc)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    # The last resort, outside every middleware (Starlette's ServerErrorMiddleware): for an
    # exception the middleware above could not catch. It sets the headers itself.
    app.add_exception_handler(Exception, _internal_error)

    @app.exception_handler(ActiveLabelingError)
    async def project_error(request: Request, exc: ActiveLabelingError):
        status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 400)
        response = _error(status, type(exc).__name__, str(exc))
        if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(BodyTooLarge)
    async def body_too_large(request: Request, exc: BodyTooLarge):
        return refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _error(422, "InvalidRequest", f"{where}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, "HTTPError", str(exc.detail))

    for router in (
        auth_routes.router,
        item_routes.router,
        review_routes.router,
        admin_routes.router,
        dashboard.router,
        forwarding.router,
    ):
        app.include_router(router)

    @app.get("/media/{path:path}", include_in_schema=False)
    def media(path: str, user: User = Depends(current_user)):
        root = (project.root / "media").resolve()
        try:
            # A NUL byte (ValueError) or a name too long for the file system (OSError).
            target = (root / path).resolve()
            found = target.is_relative_to(root) and target.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            return _error(404, "NotFound", "no such media file")
        return FileResponse(target)

    @app.get("/", include_in_schema=False)
    def index():
        return RedirectResponse("/static/index.html")

    @app.get("/healthz", include_in_schema=False)
    def health():
        return {"ok": True}

    static = static_dir()
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")

    return app


def settle_heap() -> None:
    """Collect, then move what survives to the collector's permanent generation
    (``gc.freeze``), once a server process has built its app: the modules, the app and the
    store's handles are never garbage, and Python's full collections otherwise walk them
    again every few requests. A spans card of 5,000 tokens allocates enough for a full
    collection every ~17 handouts: 20 labelers, next-item p95 71 ms before, 38 ms after
    (bench/bench_task_types.py; 19 ms with no collection at all). For a process that
    serves one app (``active-labeling serve``): garbage made of frozen objects is never
    collected."""
    gc.collect()
    gc.freeze()


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The scheduler runs while the app serves; at shutdown the store is closed and
    serve.json removed, here rather than after ``uvicorn.run`` returns: uvicorn re-raises
    SIGTERM once it has shut down."""
    if app.state.scheduler is not None:
        app.state.scheduler.start()
    try:
        yield
    finally:
        if app.state.scheduler is not None:
            app.state.scheduler.stop(timeout=30)
        marker = app.state.server_file
        if marker is not None:
            marker.unlink(missing_ok=True)
        app.state.service.close()
