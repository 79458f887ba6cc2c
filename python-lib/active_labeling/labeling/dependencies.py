"""What every route needs, declared once: the service, the current user, role and CSRF,
and a JSON body read only once the caller is let in."""

from __future__ import annotations

import email.message
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from active_labeling.labeling.auth import (
    AuthError,
    ForbiddenError,
    User,
    same_secret,
    session_user,
    token_user,
)
from active_labeling.labeling.service import LabelingService

SESSION_COOKIE = "al_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
Body = TypeVar("Body", bound=BaseModel)


def get_service(request: Request) -> LabelingService:
    return request.app.state.service


def current_user(request: Request, service: LabelingService = Depends(get_service)) -> User:
    """The caller: a Bearer token (API clients) or a session cookie (the browser).

    Cookie-authenticated state changes must carry the session's CSRF token in a header.
    """
    authorization = request.headers.get("Authorization", "")
    # The thread's own cursor: checking a caller never waits for a handout or a label.
    if authorization.startswith("Bearer "):
        user = token_user(service.cursor(), authorization[len("Bearer ") :].strip())
        if user is None:
            raise AuthError("unknown or revoked API token")
        return user
    session_id = request.cookies.get(SESSION_COOKIE)
    user = session_user(service.cursor(), session_id) if session_id else None
    if user is None:
        raise AuthError("log in first")
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same_secret(sent, user.csrf_token or ""):
            raise ForbiddenError(f"missing or wrong {CSRF_HEADER} header")
    return user


def require_role(*roles: str):
    def check(user: User = Depends(current_user)) -> User:
        if user.role not in roles:
            raise ForbiddenError(f"this needs the role {' or '.join(roles)}")
        return user

    return check


#: Role checks, declared once.
ADMIN = require_role("admin")
REVIEWER = require_role("admin", "reviewer")


def json_body(
    model: type[Body], caller: Callable = current_user, *, required: bool = True
) -> Callable:
    """A dependency: the request's JSON body as ``model``, read and parsed only once
    ``caller`` let the request in.

    FastAPI reads and parses a body declared as a parameter before it runs any dependency:
    a stranger's bad JSON would get a 422 naming fields, after a parse. Read here, in a
    dependency of ``caller``, the body waits for the 401 or 403. (FastAPI runs ``caller``
    once per request, though the route depends on it too.) Without a body: ``None``, unless
    ``required``. Pair it with :func:`body_schema` for the OpenAPI schema.
    """

    async def parse(request: Request, _caller: Any = Depends(caller)) -> Body | None:
        raw = await request.body()
        if not raw:
            if required:
                raise _invalid_body("Field required", "missing")
            return None
        if not _is_json(request.headers.get("content-type", "")):
            raise _invalid_body("send JSON, with Content-Type: application/json", "model_type")
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_context=False)
            raise RequestValidationError(
                [{**error, "loc": ("body", *error["loc"])} for error in errors]
            ) from None

    return parse


def body_schema(model: type[BaseModel], *, required: bool = True) -> dict:
    """The ``openapi_extra`` of a route reading its body with :func:`json_body`."""
    content = {"application/json": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": required, "content": content}}


def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _invalid_body(message: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])


def cards_response(payload: dict) -> JSONResponse:
    """Item cards as JSON, encoded by ``json`` directly: FastAPI's ``jsonable_encoder``
    walks every value in Python, 25 ms for one spans card of 5,000 tokens and its 500
    prelabels (1.5 ms for ``json``), in the handout's path. A value ``json`` cannot encode
    (a set, a date in a row...) falls back to ``jsonable_encoder``, as a plain return would."""
    try:
        return JSONResponse(payload)
    except TypeError:
        return JSONResponse(jsonable_encoder(payload))
