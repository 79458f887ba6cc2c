"""Admin: counts per labeler, the event log, export of the current labels, the guide."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from active_labeling.labeling.auth import User
from active_labeling.labeling.dependencies import (
    ADMIN,
    REVIEWER,
    body_schema,
    get_service,
    json_body,
)
from active_labeling.labeling.guide import MAX_CLASS_CHARS, MAX_TASK_CHARS, write_guide
from active_labeling.labeling.service import LabelingService

router = APIRouter(prefix="/api", tags=["admin"])


@router.get("/admin/stats")
def stats(
    user: User = Depends(REVIEWER),
    service: LabelingService = Depends(get_service),
):
    return service.stats()


@router.get("/admin/events")
def events(
    limit: int = Query(default=100, ge=1, le=1000),
    user: User = Depends(REVIEWER),
    service: LabelingService = Depends(get_service),
):
    return {"events": service.events(limit)}


@router.get("/export")
def export(
    format: str = Query(default="parquet", pattern="^(parquet|csv)$"),
    user: User = Depends(ADMIN),
    service: LabelingService = Depends(get_service),
):
    """The current labels as a Parquet or CSV file (admin only)."""
    path = service.export(format, service.project.exports_dir)
    media = "application/vnd.apache.parquet" if format == "parquet" else "text/csv"
    return FileResponse(path, media_type=media, filename=path.name)


class GuideBody(BaseModel):
    task: str = Field(default="", max_length=MAX_TASK_CHARS, description="what to label, how")
    classes: dict[str, str] = Field(
        default_factory=dict,
        max_length=200,
        description=f"guidance per class (at most {MAX_CLASS_CHARS} characters each)",
    )


#: The guide, read once the caller proved to be an admin (see json_body).
guide_body = json_body(GuideBody, caller=ADMIN)


@router.put("/admin/guide", openapi_extra=body_schema(GuideBody))
def set_guide(
    user: User = Depends(ADMIN),
    body: GuideBody = Depends(guide_body),
    service: LabelingService = Depends(get_service),
):
    """Replace the task description and the guidance per class the labelers see (admin
    only); shown as text."""
    guide = write_guide(
        service.cursor(), body.task, body.classes, classes=service.classes, author=user.name
    )
    return guide.as_dict()
