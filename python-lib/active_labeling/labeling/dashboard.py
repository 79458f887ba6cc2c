"""The monitoring dashboard: the metrics over the number of labels, and the stopping advice.

``GET /api/dashboard`` gives the latest advice, the metric rows and the recent scenario
runs as JSON; ``GET /api/dashboard/plots/{name}.{png|svg}`` draws one panel with
matplotlib (the same picture on the page and in a report). Reviewers and admins only.
Everything shown comes from the store's ``metrics``, ``stopping_advice`` and
``scenario_runs`` tables, which the monitoring recipe and the scenarios append to.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass

import pandas as pd
from fastapi import APIRouter, Depends, Path, Request, Response

from active_labeling.errors import InputError
from active_labeling.labeling.auth import User
from active_labeling.labeling.dependencies import REVIEWER, get_service
from active_labeling.labeling.service import LabelingService

router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])
_draw_lock = threading.Lock()  # matplotlib's font cache and state are not thread-safe


@dataclass(frozen=True)
class Panel:
    title: str
    metrics: tuple[str, ...]
    ylabel: str
    caption: str
    by: str | None = None  # a details key that splits a metric into one line each
    needs: str = "more model versions"  # what it waits for, said while it has no point


#: The dashboard's panels, in page order.
PANELS: dict[str, Panel] = {
    "accuracy": Panel(
        "Accuracy",
        ("holdout_accuracy", "holdout_macro_f1", "cv_accuracy", "cv_macro_f1"),
        "score",
        "On the holdout set when one is bound; otherwise cross-validated on the labels, which "
        "is optimistic: the labels were chosen by the strategy, not drawn at random.",
        needs="a model version with enough labels of each class to cross-validate",
    ),
    "contradictions": Panel(
        "Contradictions",
        ("contradiction_ratio",),
        "share of the sample",
        "Share of a fixed sample of the pool whose predicted class changed since the previous "
        "model version. Near zero for several versions: the model has stopped learning.",
        needs="two model versions: each is compared with the one before",
    ),
    "exploration": Panel(
        "Exploration",
        ("exploration_distance",),
        "mean distance",
        "Mean distance of each new batch to the items labeled before it. Falling to zero: "
        "the strategy keeps asking about the same region.",
        needs="a batch labeled after the first model version",
    ),
    "agreement": Panel(
        "Agreement",
        ("batch_agreement", "batch_easiness", "labeler_kappa"),
        "kappa / accuracy",
        "Batch agreement: the model against a 1-nearest-neighbour rule on the new batch. "
        "Batch easiness: the previous model's accuracy on the new batch. Labeler kappa: "
        "agreement between labelers on the items labeled twice.",
        needs="a batch labeled after a model version (labeler kappa: items labeled twice, "
        "overlap in project.toml)",
    ),
    "uncertainty": Panel(
        "Uncertainty",
        ("uncertainty_variance", "mean_confidence"),
        "value",
        "Variance of the model's uncertainty over recent batches (Ghayoomi 2010) and its mean "
        "confidence on the pool sample (Vlachos 2008): both settle when labeling stops paying.",
        needs="a few model versions, each with a batch labeled after it",
    ),
    "labelers": Panel(
        "Labelers",
        ("labeler_consensus_agreement", "labeler_review_agreement"),
        "share agreeing",
        "Per labeler: the share of their labels that agree with the consensus of the items "
        "labeled twice or more (a tie counts as a disagreement), and with the reviewers' "
        "decisions. Low for one labeler only: that labeler needs help, or the guide does.",
        by="annotator",
        needs="items labeled twice (overlap in project.toml) or reviewed",
    ),
    "pace": Panel(
        "Labels per hour",
        ("labels_per_hour",),
        "labels per hour",
        "Labels per hour of active work, per labeler (pauses over 5 minutes left out).",
        by="annotator",
        needs="labels given in the app (imported labels carry no time)",
    ),
}


#: A metric's short name in the legend of a panel that splits several metrics by a key.
_SHORT = {
    "labeler_consensus_agreement": "with the consensus",
    "labeler_review_agreement": "with the reviewers",
}


def _history(service: LabelingService) -> pd.DataFrame:
    from active_labeling.flow.monitoring import metric_history

    cursor = service.cursor()
    try:
        return metric_history(cursor, dataset=service.dataset)
    except Exception as exc:  # a store from before the monitoring tables: nothing to show
        if "metrics" in str(exc):
            return pd.DataFrame(columns=["metric", "value", "n_labels", "details"])
        raise


def _value(value):
    return (
        None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
    )


def _expected(history: pd.DataFrame, policy: str | None) -> dict | None:
    """What the advice's preset achieved in the advice study, for this project's case (with
    or without a holdout), on data sets it was not chosen on: labels saved and the share of
    premature stops, with intervals. None for the classic advice."""
    from active_labeling.metrics.advice import calibration

    study = calibration()
    policy = policy or (study or {}).get("default")
    if study is None or policy not in study["presets"]:
        return None
    holdout = bool((history["metric"] == "holdout_accuracy").any()) if len(history) else False
    case = study["presets"][policy]["holdout" if holdout else "no_holdout"]
    return {
        "policy": policy,
        "holdout": holdout,
        "runs": study["runs"],
        "datasets": len(study["datasets"]),
        "source": study["source"],
        **{key: case["held_out"][key] for key in ("saving", "saving_low", "saving_high")},
        **{
            key: case["held_out"][key]
            for key in ("premature_1", "premature_1_low", "premature_1_high", "stopped")
        },
    }


def _strategy_advice(service: LabelingService, history: pd.DataFrame, model: str | None):
    """The strategy advice for the queue's latest strategy, from the model's metrics."""
    from active_labeling.metrics.advice import History
    from active_labeling.metrics.strategy_advice import RUNG, strategy_advice

    if service.queue is None or model is None or history.empty:
        return None
    row = (
        service.cursor()
        .execute(
            "SELECT strategy FROM queue_generations WHERE queue = ? "
            "ORDER BY generation_id DESC LIMIT 1",
            [service.queue],
        )
        .fetchone()
    )
    if row is None or row[0] not in RUNG:
        return None
    mine = history[history["model_name"] == model] if "model_name" in history else history
    if mine.empty:
        return None
    advice = strategy_advice(History.from_frame(mine), row[0])
    return {
        "strategy": row[0],
        "action": advice.action,
        "suggested": advice.strategy,
        "reasons": advice.reasons,
    }


@router.get("")
def dashboard(
    request: Request,
    user: User = Depends(REVIEWER),
    service: LabelingService = Depends(get_service),
) -> dict:
    """The latest stopping advice (with each rule's vote and what the advice achieved in the
    advice study), the strategy advice, every metric row, the panels, the recent scenario
    runs, and the label quality: per labeler and per pair, the likely label errors and
    what reviewers made of them, the review queue."""
    from active_labeling.flow.label_quality import quality_summary
    from active_labeling.flow.monitoring import latest_advice

    cursor = service.cursor()
    advice = latest_advice(cursor, dataset=service.dataset)
    history = _history(service)
    if advice is not None:
        advice["computed_at"] = advice["computed_at"].isoformat()
        advice["expected"] = _expected(history, advice.get("policy"))
    strategy = _strategy_advice(service, history, advice["model_name"] if advice else None)
    rows = [
        {
            "metric": r.metric,
            "value": _value(r.value),
            "n_labels": int(r.n_labels),
            "model_version": str(r.model_version),
            "details": r.details,
        }
        for r in history.itertuples(index=False)
    ]
    try:
        runs = cursor.execute(
            "SELECT scenario, trigger, status, started_at, duration_s, error FROM scenario_runs "
            "ORDER BY started_at DESC LIMIT 10"
        ).fetchall()
    except Exception:  # no scenario table in this store
        runs = []
    keys = ("scenario", "trigger", "status", "started_at", "duration_s", "error")
    quality = quality_summary(cursor, history, service.dataset)
    quality["review_queue"] = request.app.state.review.summary()["queue"]
    return {
        "dataset": service.dataset,
        "label_quality": quality,
        "advice": advice,
        "strategy_advice": strategy,
        "metrics": rows,
        "panels": [
            {"name": name, "title": panel.title, "caption": panel.caption}
            for name, panel in PANELS.items()
        ],
        "scenario_runs": [
            {
                k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in zip(keys, r, strict=True)
            }
            for r in runs
        ],
    }


@router.get("/plots/{name}.{fmt}", response_class=Response)
def plot(
    name: str = Path(description="a panel: " + ", ".join(PANELS)),
    fmt: str = Path(description="png or svg"),
    user: User = Depends(REVIEWER),
    service: LabelingService = Depends(get_service),
):
    """One panel as a PNG or SVG image, ready for a report."""
    if name not in PANELS:
        raise InputError(f"no panel {name!r}; the panels are {', '.join(PANELS)}")
    if fmt not in ("png", "svg"):
        raise InputError(f"format must be png or svg, got {fmt!r}")
    image = draw(PANELS[name], _history(service), fmt)
    media = "image/png" if fmt == "png" else "image/svg+xml"
    return Response(
        image,
        media_type=media,
        headers={"Content-Disposition": f'inline; filename="{name}.{fmt}"'},
    )


def draw(panel: Panel, history: pd.DataFrame, fmt: str) -> bytes:
    """The panel's lines over the number of labels, as PNG or SVG bytes."""
    with _draw_lock:
        figure = panel_figure(panel, history)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt)
        return buffer.getvalue()


def panel_figure(panel: Panel, history: pd.DataFrame):
    """The panel as a matplotlib Figure (call under ``_draw_lock``).

    Without a measured value it says why in the picture: nothing measured yet, or not
    enough data yet for this panel's metrics (what they wait for). The labels axis starts
    at 0 with whole numbers, so a single point sits at its count, not in a band of
    fractions of a label around it.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(6.4, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn, largest = 0, 0
    for metric in panel.metrics:
        rows = history[history["metric"] == metric]
        values = pd.to_numeric(rows["value"], errors="coerce")
        rows = rows[values.notna() & (values.abs() < math.inf)]  # NaN: not measured
        if rows.empty:
            continue
        groups = [(metric, rows)]
        if panel.by:
            keys = rows["details"].map(lambda d: str(d.get(panel.by, "")))
            name = _SHORT.get(metric, metric) if len(panel.metrics) > 1 else ""
            groups = [
                (f"{key}, {name}" if name else key, rows[keys == key])
                for key in sorted(keys.unique())
            ]
        for label, part in groups:
            part = part.sort_values("n_labels")
            optimistic = metric.startswith("cv_")
            style = "--" if optimistic else "-"
            label = f"{label} (optimistic)" if optimistic else label
            axes.plot(part["n_labels"], part["value"], style, marker="o", markersize=4, label=label)
            largest = max(largest, int(part["n_labels"].max()))
            drawn += 1
    axes.set_title(panel.title)
    axes.set_xlabel("labels")
    axes.set_ylabel(panel.ylabel)
    axes.grid(alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if drawn:
        axes.set_xlim(0, max(1, round(largest * 1.08)))
        axes.legend(fontsize="small", loc="best")
    else:
        axes.set_xticks([])
        axes.set_yticks([])
        headline, detail = _empty_text(panel, history)
        axes.text(0.5, 0.56, headline, ha="center", va="bottom", fontsize=13, color="0.3",
                  transform=axes.transAxes)  # fmt: skip
        axes.text(0.5, 0.5, detail, ha="center", va="top", fontsize=10, color="0.4",
                  transform=axes.transAxes)  # fmt: skip
    return figure


def _empty_text(panel: Panel, history: pd.DataFrame) -> tuple[str, str]:
    """What an empty panel says: nothing measured at all, or what its metrics wait for."""
    import textwrap

    if history.empty:
        return "no measurement yet", "run the monitoring recipe\n(active-labeling scenario setup)"
    return "not enough data yet", textwrap.fill(f"it needs {panel.needs}", width=60)
