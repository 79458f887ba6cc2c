"""Admin: counts per labeler, the event log, export of the current labels."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from active_labeling.labeling.auth import User
from active_labeling.labeling.dependencies import ADMIN, REVIEWER, get_service
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
