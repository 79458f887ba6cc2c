"""The dashboard's API: who may see it, the advice and metric rows, each panel as PNG/SVG."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from active_labeling.labeling.app import create_app
from active_labeling.labeling.auth import add_user
from active_labeling.labeling.dashboard import PANELS

from flow_helpers import make_project

PAYLOAD = "<script>alert(1)</script>"


@pytest.fixture
def app(tmp_path):
    project = make_project(tmp_path / "p", n=40, n_labels=10)
    now = datetime.now(timezone.utc)
    with project.connect() as con:
        passwords = {
            "ann": add_user(con, "ann", "labeler"),
            "rita": add_user(con, "rita", "reviewer"),
        }
        rows = []
        for version, (n, ratio) in enumerate([(10, 0.30), (20, 0.12), (30, 0.01)], start=1):
            rows.append(("contradiction_ratio", ratio, version, n, "{}"))
            for who, pace in (("ann", 100.0 + version), (PAYLOAD, 80.0)):
                rows.append(("labels_per_hour", pace, version, n, json.dumps({"annotator": who})))
        con.executemany(
            "INSERT INTO metrics VALUES ('pool', ?, ?, 'clf', ?, ?, ?, ?)",
            [[metric, value, str(v), n, now, details] for metric, value, v, n, details in rows],
        )
        votes = [{"rule": "contradictions", "vote": "stop", "decides": True, "stuck": False}]
        con.execute(
            "INSERT INTO stopping_advice (dataset, advice, reasons, model_name, model_version, "
            "n_labels, computed_at, votes) VALUES ('pool', 'stop', ?, 'clf', '3', 30, ?, ?)",
            [
                json.dumps(["contradictions stalled near zero", PAYLOAD]),
                now,
                json.dumps({"policy": "cautious", "votes": votes}),
            ],
        )
        # Two kcenter generations whose batches were easier than random rows.
        for version, ours, theirs in ((2, 0.9, 0.6), (3, 0.95, 0.7)):
            con.executemany(
                "INSERT INTO metrics VALUES ('pool', ?, ?, 'clf', ?, ?, ?, '{}')",
                [
                    ["batch_agreement", ours, str(version), 10 * version, now],
                    ["random_batch_agreement", theirs, str(version), 10 * version, now],
                ],
            )
        for generation in (1, 2):
            con.execute(
                "INSERT INTO queue_generations VALUES (?, 'queue', 'pool', 'kcenter', 'clf', ?, "
                "'{}', 30, 0, ?)",
                [generation, str(generation), now],
            )
    app = create_app(project.root)
    yield app, passwords
    app.state.service.close()


def login(app, name, password):
    client = TestClient(app)
    answer = client.post("/api/login", json={"username": name, "password": password})
    assert answer.status_code == 200, answer.text
    return client


def test_the_dashboard_is_for_reviewers_and_admins(app):
    app, passwords = app
    assert TestClient(app).get("/api/dashboard").status_code == 401
    ann = login(app, "ann", passwords["ann"])
    assert ann.get("/api/dashboard").status_code == 403
    assert ann.get("/api/dashboard/plots/pace.png").status_code == 403


def test_the_advice_the_metric_rows_and_the_panels(app):
    app, passwords = app
    rita = login(app, "rita", passwords["rita"])
    data = rita.get("/api/dashboard").json()
    assert data["advice"]["advice"] == "stop" and data["advice"]["reasons"][1] == PAYLOAD
    assert data["advice"]["votes"][0] == {
        "rule": "contradictions",
        "vote": "stop",
        "decides": True,
        "stuck": False,
    }
    expected = data["advice"]["expected"]  # the advice study's figures, without a holdout
    assert expected["holdout"] is False and 0 <= expected["premature_1"] <= 1
    assert expected["saving_low"] <= expected["saving"] <= expected["saving_high"]
    strategy = data["strategy_advice"]
    assert strategy["strategy"] == "kcenter" and strategy["action"] == "harder"
    assert strategy["suggested"] == "wkmeans" and "random rows" in strategy["reasons"][0]
    ratios = [
        (r["n_labels"], r["value"]) for r in data["metrics"] if r["metric"] == "contradiction_ratio"
    ]
    assert ratios == [(10, 0.30), (20, 0.12), (30, 0.01)]
    assert [p["name"] for p in data["panels"]] == list(PANELS)
    assert data["scenario_runs"] == []


@pytest.mark.parametrize("name", list(PANELS))
def test_every_panel_draws_as_png_and_svg(app, name):
    app, passwords = app
    rita = login(app, "rita", passwords["rita"])
    png = rita.get(f"/api/dashboard/plots/{name}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    svg = rita.get(f"/api/dashboard/plots/{name}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content and b"<script>" not in svg.content


def test_unknown_panels_and_formats_are_refused_by_name(app):
    app, passwords = app
    rita = login(app, "rita", passwords["rita"])
    answer = rita.get("/api/dashboard/plots/nope.png")
    assert answer.status_code == 422 and "'nope'" in answer.json()["detail"]
    answer = rita.get("/api/dashboard/plots/pace.gif")
    assert answer.status_code == 422 and "'gif'" in answer.json()["detail"]


def _metric_rows(*rows) -> pd.DataFrame:
    """History rows (metric, value, n_labels, details) as metric_history returns them."""
    return pd.DataFrame(
        [
            {"metric": m, "value": v, "n_labels": n, "details": d, "model_version": "1"}
            for m, v, n, d in rows
        ],
        columns=["metric", "value", "n_labels", "details", "model_version"],
    )


def _texts(figure) -> str:
    return " ".join(t.get_text() for axes in figure.axes for t in axes.texts)


def test_an_empty_panel_says_why_and_a_single_point_gets_a_labels_axis():
    from active_labeling.labeling.dashboard import panel_figure

    nothing = panel_figure(PANELS["contradictions"], _metric_rows())
    assert "no measurement yet" in _texts(nothing) and "monitoring" in _texts(nothing)
    # Monitored once: accuracy has a point; the contradictions wait for a second version
    # (a NaN row is no point either).
    once = _metric_rows(
        ("cv_accuracy", 0.8, 8, {}),
        ("contradiction_ratio", float("nan"), 8, {}),
    )
    waiting = panel_figure(PANELS["contradictions"], once)
    assert "not enough data yet" in _texts(waiting) and "two model versions" in _texts(waiting)
    assert not waiting.axes[0].lines
    single = panel_figure(PANELS["accuracy"], once)
    left, right = single.axes[0].get_xlim()
    assert left == 0 and 8 < right <= 10  # it was 7.6 to 8.4: fractions of a label
    ticks = [t for t in single.axes[0].get_xticks() if left <= t <= right]
    assert all(float(t).is_integer() for t in ticks) and len(ticks) >= 3
    assert _texts(single) == ""
