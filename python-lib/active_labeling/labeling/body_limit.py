"""A cap on the size of request bodies, per route, enforced before anything reads them.

Without it one unauthenticated POST of 200 MB made the server hold the body, then its parsed
JSON, in memory. A body announced larger than its route's cap (``Content-Length``) is refused
with a 413 before the app runs; a body without a length (chunked) is counted as it arrives and
refused once it passes the cap, so no more than the cap is ever held. The connection is then
closed: the rest of the body is never read.

Pure ASGI on purpose: a ``BaseHTTPMiddleware`` sees a Request, not the messages a route reads,
so it could not count them. FastAPI's own ``max_body_size`` is not used: it answers an
announced oversize in plain text, without the app's headers, and only after running the
handler of a route that reads no body.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(StarletteHTTPException):
    """A body over its route's cap. An HTTPException because FastAPI lets those through
    when they come up while it reads a body, so the app's handler answers it."""

    def __init__(self, method: str, path: str, cap: int) -> None:
        super().__init__(413, f"the body of {method} {path} may hold at most {cap} bytes")


def refusal(exc: BodyTooLarge) -> JSONResponse:
    """The 413: JSON like every error, and the end of the connection (the body is unread)."""
    return JSONResponse(
        {"error": "ContentTooLarge", "detail": exc.detail},
        status_code=413,
        headers={"Connection": "close"},
    )


class BodyLimit:
    """Caps request bodies: ``caps`` by exact path, ``default`` for every other path."""

    def __init__(
        self, app: ASGIApp, *, default: int, caps: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default = default
        self.caps = dict(caps or {})

    def cap(self, path: str) -> int:
        return self.caps.get(path, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap(scope["path"])
        too_large = BodyTooLarge(scope["method"], scope["path"], cap)
        if _announced_length(scope) > cap:
            await refusal(too_large)(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise too_large
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            # The app's handler answers it while a route reads its body; this is for a
            # reader elsewhere (none today).
            if started:
                raise
            await refusal(too_large)(scope, receive, send)


def _announced_length(scope: Scope) -> int:
    """The Content-Length, or -1 when there is none (or the server let a bad one through)."""
    try:
        return int(Headers(scope=scope).get("content-length", -1))
    except ValueError:
        return -1
