"""Items: the next ones to label, labeling, skipping, undo, history and progress."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from active_labeling.labeling.annotations import Box, Span
from active_labeling.labeling.auth import User
from active_labeling.labeling.dependencies import (
    body_schema,
    cards_response,
    current_user,
    get_service,
    json_body,
)
from active_labeling.labeling.service import LabelingService

router = APIRouter(prefix="/api", tags=["labeling"])

#: The longest time spent on one item that is taken as true: a week, in milliseconds.
MAX_LEAD_TIME_MS = 7 * 24 * 3600 * 1000


def _lead_time():
    return Field(
        default=None,
        ge=0,
        le=MAX_LEAD_TIME_MS,
        description="milliseconds spent on the item (0 to a week)",
    )


class LabelBody(BaseModel):
    label: str | None = Field(default=None, description="the class (single-label projects)")
    labels: list[str] | None = Field(
        default=None, max_length=200, description="the classes (multi-label projects)"
    )
    spans: list[Span] | None = Field(
        default=None, max_length=5000, description="the marked spans (spans projects)"
    )
    boxes: list[Box] | None = Field(
        default=None, max_length=2000, description="the drawn boxes (boxes projects)"
    )
    comment: str | None = Field(default=None, max_length=2000)
    lead_time_ms: int | None = _lead_time()
    session: str | None = Field(default=None, max_length=100)


class SkipBody(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)
    lead_time_ms: int | None = _lead_time()
    session: str | None = Field(default=None, max_length=100)


#: The bodies, read once the caller is known (see json_body).
label_body = json_body(LabelBody)
skip_body = json_body(SkipBody, required=False)


class Ack(BaseModel):
    event_id: int
    item_id: str
    label: str | None
    status: str


@router.get("/items/next")
def next_items(
    count: int = Query(default=1, ge=1, le=20),
    hint: bool = Query(default=True, description="include the model's predicted class"),
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    """The next items to label, leased to the caller (their own leases first).

    ``queue_exhausted``: the ranked queue has no free item left, the rest come in dataset
    order; ``has_queue`` false: no queue was written yet, items come in dataset order."""
    handout = service.next_items(user.name, count, hint=hint)
    return cards_response(
        {
            "items": handout.items,
            "queue_exhausted": handout.queue_exhausted,
            "has_queue": handout.has_queue,
            "done": handout.done,
        }
    )


@router.get("/items/{item_id:path}")
def get_item(
    item_id: str,
    request: Request,
    hint: bool = Query(default=True, description="include the model's predicted class"),
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    """An item's card. Reviewers and admins also get its current label whoever gave it,
    every event of the item (``events``, reviewers' decisions included), the latest
    decision (``review``) and the item's state event (``seen_event_id``, what a decision
    names); a labeler sees their own label only."""
    staff = user.role in ("admin", "reviewer")
    item = service.item(item_id, None if staff else user.name, hint=hint)
    if staff:
        from active_labeling.labeling.review import decision_note

        review = request.app.state.review
        events = review.history(item_id)
        item["events"] = events
        item["review"] = decision_note(events)
        item["seen_event_id"] = review.state_event_id(item_id)
    return cards_response(item)


@router.post("/items/{item_id:path}/heartbeat")
def heartbeat(
    item_id: str,
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    return {"lease_expires_at": service.heartbeat(user.name, item_id).isoformat()}


@router.post(
    "/items/{item_id:path}/label", response_model=Ack, openapi_extra=body_schema(LabelBody)
)
def label(
    item_id: str,
    user: User = Depends(current_user),
    body: LabelBody = Depends(label_body),
    service: LabelingService = Depends(get_service),
):
    """Label an item; acknowledged once the event is committed."""
    value = service.task.label_value(body)  # a class, classes, spans or boxes (annotations)
    event_id = service.record(
        user.name,
        item_id,
        status="labeled",
        label=value,
        comment=body.comment,
        lead_time_ms=body.lead_time_ms,
        session=body.session,
    )
    return Ack(
        event_id=event_id,
        item_id=item_id,
        label=value,
        status="labeled",
    )


@router.post(
    "/items/{item_id:path}/skip",
    response_model=Ack,
    openapi_extra=body_schema(SkipBody, required=False),
)
def skip(
    item_id: str,
    user: User = Depends(current_user),
    body: SkipBody | None = Depends(skip_body),
    service: LabelingService = Depends(get_service),
):
    body = body or SkipBody()
    event_id = service.record(
        user.name,
        item_id,
        status="skipped",
        comment=body.comment,
        lead_time_ms=body.lead_time_ms,
        session=body.session,
    )
    return Ack(event_id=event_id, item_id=item_id, label=None, status="skipped")


@router.post("/undo")
def undo(
    session: str | None = Query(default=None, max_length=100),
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    """Undo the caller's latest label or skip; the item is theirs again."""
    undone, item = service.undo(user.name, session)
    return cards_response({"undone": undone, "item": item})


@router.get("/history")
def history(
    limit: int = Query(default=20, ge=1, le=500),
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    return {"items": service.history(user.name, limit)}


@router.get("/progress")
def progress(
    session: str | None = Query(default=None, max_length=100),
    user: User = Depends(current_user),
    service: LabelingService = Depends(get_service),
):
    return service.progress(user.name, session)
