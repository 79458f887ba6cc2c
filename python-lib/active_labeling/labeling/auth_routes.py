"""Log in, log out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field, field_validator

from active_labeling.labeling.auth import (
    DEVICE_COOKIE,
    DEVICE_DAYS,
    AuthError,
    User,
    check_password,
    close_session,
    open_session,
)
from active_labeling.labeling.dependencies import SESSION_COOKIE, current_user, get_service
from active_labeling.labeling.guide import read_guide
from active_labeling.labeling.service import LabelingService, class_keys

router = APIRouter(prefix="/api", tags=["session"])


#: Longer user names are refused before any work: no user has one (64 at most), and the
#: login throttle keeps a key per name tried.
MAX_USERNAME = 200
MAX_PASSWORD = 1024


class Login(BaseModel):
    username: str = Field(max_length=MAX_USERNAME)
    password: str = Field(max_length=MAX_PASSWORD)

    @field_validator("username", "password")
    @classmethod
    def _encodable(cls, value: str) -> str:
        try:
            value.encode("utf-8")  # a lone surrogate (JSON "\\ud800") has no UTF-8 form
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value


class SessionInfo(BaseModel):
    user: str
    role: str
    csrf_token: str | None
    project: dict | None = None


@router.post("/login", response_model=SessionInfo)
def login(
    body: Login,
    request: Request,
    response: Response,
    service: LabelingService = Depends(get_service),
):
    throttle = request.app.state.throttle
    address = request.client.host if request.client else "unknown"
    device = request.cookies.get(DEVICE_COOKIE)
    attempt = throttle.reserve(body.username, address, device)  # failed unless it succeeds
    try:
        # Not under the service's lock: the slow password hash must not hold up labelers.
        user = check_password(service.cursor(), body.username, body.password)
        session_id, user = open_session(service.cursor(), user)
    except AuthError:
        raise
    except BaseException:
        throttle.cancel(attempt)  # the server failed, not the password
        raise
    throttle.succeeded(attempt)
    secure = request.app.state.secure_cookies
    response.set_cookie(
        SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=secure, path="/"
    )
    # This browser's next logins as this user are its own, not its address's.
    response.set_cookie(
        DEVICE_COOKIE,
        throttle.device_cookie(user.name),
        max_age=DEVICE_DAYS * 24 * 3600,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/api/login",
    )
    return SessionInfo(user=user.name, role=user.role, csrf_token=user.csrf_token)


@router.post("/logout")
def logout(
    request: Request,
    response: Response,
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        close_session(service.cursor(), session_id)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return {"ok": True}


@router.get("/session", response_model=SessionInfo)
def session(user: User = Depends(current_user), service: LabelingService = Depends(get_service)):
    return SessionInfo(
        user=user.name,
        role=user.role,
        csrf_token=user.csrf_token,
        project={
            "name": service.project.settings.name,
            "dataset": service.dataset,
            "queue": service.queue,
            "classes": service.classes,
            "multi_label": service.multi_label,
            "keys": class_keys(service.classes),
            "columns": service.columns(),
            "guide": read_guide(service.cursor()).as_dict(),
            **service.task.session_info(),  # the task type (labeling.annotations)
        },
    )
