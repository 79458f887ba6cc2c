"""Next-item latency for spans (a 5,000-token text) and boxes (a 1 MB image) beside rows.

In process (FastAPI's TestClient, no sockets), 20 labelers taking turns: each asks for its
next item (``GET /api/items/next?count=1``), then labels it, 20 rounds; for boxes the image
is fetched too (``GET /media/...``, 1 MB). A smaller scale than bench_labeling.py (which
serves 1,000,000 rows over HTTP to 20 concurrent labelers): on this shared 2-core machine
the figures compare the three item kinds under the same load, not the HTTP stack.
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, fmt_s, main

sys.path.insert(0, str(ROOT / "tests"))

NAME = "task_types"
LABELERS = 20


def _p95(values):
    return statistics.quantiles(values, n=20)[18]


def _clients(project, app):
    from fastapi.testclient import TestClient

    from active_labeling.labeling.auth import add_user

    clients = []
    service = app.state.service
    for i in range(LABELERS):
        password = add_user(service.cursor(), f"l{i}", "labeler")
        client = TestClient(app)
        token = client.post("/api/login", json={"username": f"l{i}", "password": password})
        client.headers["X-CSRF-Token"] = token.json()["csrf_token"]
        clients.append(client)
    return clients


def _measure(app, rounds, body_of, media=False):
    clients = _clients(None, app)
    nexts, labels, medias = [], [], []
    for _ in range(rounds):
        for client in clients:
            start = time.perf_counter()
            item = client.get("/api/items/next?count=1&hint=0").json()["items"][0]
            nexts.append(time.perf_counter() - start)
            if media:
                start = time.perf_counter()
                assert len(client.get(item["image"]["url"]).content) > 900_000
                medias.append(time.perf_counter() - start)
            start = time.perf_counter()
            answer = client.post(f"/api/items/{item['item_id']}/label", json=body_of(item))
            assert answer.status_code == 200, answer.text
            labels.append(time.perf_counter() - start)
    return nexts, labels, medias


def run(quick: bool) -> dict:
    from active_labeling.flow.project import Project
    from active_labeling.labeling.app import create_app, settle_heap
    from active_labeling.store.media import import_folder

    from flow_helpers import make_project
    from media_helpers import spans_project

    rounds = 3 if quick else 20
    n = LABELERS * rounds + 10
    scratch = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    rows = []
    # Rows: the ordinary tabular project.
    project = make_project(scratch / "rows", n=max(n, 500), n_labels=0)
    app = create_app(project.root)
    settle_heap()  # as `active-labeling serve` does once its app is built
    r = _measure(app, rounds, lambda item: {"label": "yes"})
    app.state.service.close()
    rows.append(["rows (3 columns)", *r])
    # Spans: texts of 5,000 tokens.
    words = "Ada met Charles in London while Marie walked to Paris".split()
    text = " ".join(words[i % len(words)] for i in range(5_000))
    project = spans_project(scratch / "spans", texts=[(text, [])] * n)
    app = create_app(project.root)
    settle_heap()  # as `active-labeling serve` does once its app is built
    r = _measure(app, rounds, lambda item: {"spans": [{"start": 0, "end": 3, "label": "PER"}]})
    app.state.service.close()
    rows.append(["spans (5,000 tokens)", *r])
    # Boxes: a folder of 1 MB images.
    import numpy as np
    from PIL import Image

    folder = scratch / "pics"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 255, (600, 600, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")  # noise: about 1 MB, incompressible
    for i in range(n):
        (folder / f"img{i:04d}.png").write_bytes(buffer.getvalue())
    project = Project.init(scratch / "boxes", classes=["car"])
    with project.connect() as con:
        project.record_dataset(
            import_folder(con, "pics", folder, project.root / "media", task="boxes")
        )
    app = create_app(project.root)
    settle_heap()  # as `active-labeling serve` does once its app is built
    r = _measure(
        app,
        rounds,
        lambda item: {"boxes": [{"x": 1, "y": 1, "w": 50, "h": 40, "label": "car"}]},
        media=True,
    )
    app.state.service.close()
    rows.append([f"boxes ({len(buffer.getvalue()) / 1e6:.1f} MB image)", *r])
    table = []
    for name, nexts, labels, medias in rows:
        table.append(
            [
                name,
                fmt_s(statistics.median(nexts)),
                fmt_s(_p95(nexts)),
                fmt_s(_p95(labels)),
                fmt_s(_p95(medias)) if medias else "–",
            ]
        )
    return {
        "title": "Labeling: next item for spans and boxes beside rows "
        f"({LABELERS} labelers, in process)",
        "about": __doc__.split("\n\n", 1)[1].strip().replace("\n", " "),
        "tables": [
            {
                "caption": f"{LABELERS} labelers x {rounds} rounds: latency of each call",
                "columns": ["items", "next p50", "next p95", "label p95", "image p95"],
                "rows": table,
                "footnote": "next: GET /api/items/next?count=1&hint=0 (the card: for spans the "
                "text, its tokens and the prelabels); label: POST .../label, checked against the "
                "item; image: GET /media/... of the 1 MB file. Each app is settled as `serve` "
                "settles it (labeling.app.settle_heap: gc.freeze once built); the clients share "
                "the process, so Python's collections of their garbage are in the figures too.",
            }
        ],
        "targets": [],
    }


if __name__ == "__main__":
    main(NAME, run)
