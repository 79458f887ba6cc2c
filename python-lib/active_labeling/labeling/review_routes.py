"""Review (reviewers and admins): the review queue, and accept, correct or send back."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from active_labeling.labeling.annotations import Box, Span
from active_labeling.labeling.auth import User
from active_labeling.labeling.dependencies import REVIEWER, body_schema, cards_response, json_body
from active_labeling.labeling.review import ReviewDesk

router = APIRouter(prefix="/api/review", tags=["review"])


def get_review(request: Request) -> ReviewDesk:
    return request.app.state.review


class DecisionBody(BaseModel):
    comment: str | None = Field(default=None, max_length=2000)
    seen_event_id: int | None = Field(
        default=None,
        description="the item's state event the reviewer saw (every review card has it): a "
        "decision on an item that changed since is refused",
    )


class CorrectionBody(DecisionBody):
    label: str | None = Field(default=None, description="the class (single-label projects)")
    labels: list[str] | None = Field(
        default=None, max_length=200, description="the classes (multi-label projects)"
    )
    spans: list[Span] | None = Field(
        default=None, max_length=5000, description="the spans the item should have (spans)"
    )
    boxes: list[Box] | None = Field(
        default=None, max_length=2000, description="the boxes the item should have (boxes)"
    )


class SendBackBody(DecisionBody):
    comment: str = Field(min_length=1, max_length=2000, description="what the labeler should see")


#: The bodies, read once the caller proved to be a reviewer or an admin (see json_body).
accept_body = json_body(DecisionBody, caller=REVIEWER, required=False)
correct_body = json_body(CorrectionBody, caller=REVIEWER)
send_back_body = json_body(SendBackBody, caller=REVIEWER)


class Decision(BaseModel):
    event_id: int
    item_id: str
    review: str
    label: str | list[str] | None
    previous_label: str | list[str] | None


@router.get("/next")
def next_items(
    count: int = Query(default=5, ge=1, le=20),
    user: User = Depends(REVIEWER),
    review: ReviewDesk = Depends(get_review),
):
    """The next items to review, held for the caller a few minutes: likely label errors
    first, then disagreements between labelers, then a spot-check sample; with the queue's
    size per reason (``totals``)."""
    return cards_response(review.next_items(user.name, count))


@router.get("/summary")
def summary(user: User = Depends(REVIEWER), review: ReviewDesk = Depends(get_review)):
    """The queue's size per reason and the decisions taken so far."""
    return review.summary()


@router.post(
    "/items/{item_id:path}/accept",
    response_model=Decision,
    openapi_extra=body_schema(DecisionBody, required=False),
)
def accept(
    item_id: str,
    user: User = Depends(REVIEWER),
    body: DecisionBody | None = Depends(accept_body),
    review: ReviewDesk = Depends(get_review),
):
    """The item's label (its one label, or its labelers' consensus) stands, final."""
    body = body or DecisionBody()
    return review.decide(
        user.name, item_id, "accept", comment=body.comment, seen_event_id=body.seen_event_id
    )


@router.post(
    "/items/{item_id:path}/correct",
    response_model=Decision,
    openapi_extra=body_schema(CorrectionBody),
)
def correct(
    item_id: str,
    user: User = Depends(REVIEWER),
    body: CorrectionBody = Depends(correct_body),
    review: ReviewDesk = Depends(get_review),
):
    """A new label for the item, final; the labelers' events stay in the log. Spans and
    boxes projects send the whole list (``spans`` or ``boxes``), checked as a labeler's."""
    label = review.service.task.label_value(body)
    return review.decide(
        user.name,
        item_id,
        "correct",
        label=label,
        comment=body.comment,
        seen_event_id=body.seen_event_id,
    )


@router.post(
    "/items/{item_id:path}/send-back",
    response_model=Decision,
    openapi_extra=body_schema(SendBackBody),
)
def send_back(
    item_id: str,
    user: User = Depends(REVIEWER),
    body: SendBackBody = Depends(send_back_body),
    review: ReviewDesk = Depends(get_review),
):
    """Back to labeling, with a comment: the next labeler who asks gets it first, with the
    comment; the labels before it no longer count (they stay in the log)."""
    return review.decide(
        user.name, item_id, "send_back", comment=body.comment, seen_event_id=body.seen_event_id
    )


@router.get("/items/{item_id:path}/history")
def history(
    item_id: str,
    user: User = Depends(REVIEWER),
    review: ReviewDesk = Depends(get_review),
):
    """Every event of the item, oldest first, with the reviewers' decisions."""
    return {"item_id": item_id, "events": review.history(item_id)}
