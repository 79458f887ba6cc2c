"""`labels export --format ...` on 100,000 labeled items: boxes (2 per image) and spans (2 per
text of 24 tokens), each format beside DuckDB's COPY of the store's current labels joined
with their items to a CSV file (the baseline: reading and writing, nothing decided). Every
export takes each item's decided label (``store.consensus``: a reviewer's decision, else
the labelers' consensus): the csv export decides every item in pandas, the formats only the
items labeled twice or reviewed.

The stores are made in SQL (no image file is needed: a folder dataset's rows carry each
image's size), the label events appended as one INSERT and ``item_state`` synced, as
``labels import`` does. Each export runs once after a warm-up on 1,000 items; the figure is
its wall time. The process's peak resident memory at the end shows that the exports stream
(the stores themselves are DuckDB's, outside Python).
"""

from __future__ import annotations

import resource
import shutil
import tempfile
import time
from pathlib import Path

from _common import fmt_ratio, fmt_s, main, target

NAME = "exports"
TARGET_S = 10.0
WORDS = "Ada met Charles in London while Marie walked to Paris and Alan read".split()


def make_boxes(root: Path, n: int):
    from active_labeling.flow.project import Project
    from active_labeling.store.labels import sync_item_state

    project = Project.init(root, classes=["cat", "dog"], task="boxes", media_column="path")
    with project.connect() as con:
        con.execute(
            "CREATE TABLE dataset_images AS SELECT 'img' || i || '.jpg' AS item_id, "
            "'images/img' || i || '.jpg' AS path, 640 AS width, 480 AS height "
            f"FROM range({n}) t(i)"
        )
        con.execute(
            "INSERT INTO label_events (dataset, item_id, label, status, annotator, session) "
            'SELECT \'images\', item_id, \'[{"x": 10, "y": 20, "w": 100, "h": 50, '
            '"label": "cat"}, {"x": 300, "y": 200, "w": 120.5, "h": 90, "label": "dog"}]\', '
            "'labeled', 'ann', 'bench' FROM dataset_images"
        )
        sync_item_state(con, "images", session="bench")
    return project, "images"


def make_spans(root: Path, n: int):
    from active_labeling.flow.project import Project
    from active_labeling.store.labels import sync_item_state

    project = Project.init(root, classes=["PER", "LOC"], task="spans", text_column="text")
    text = " ".join(WORDS * 2)  # 24 tokens; 'Ada' at 0-3, 'London' at 19-25
    with project.connect() as con:
        con.execute(
            "CREATE TABLE dataset_texts AS SELECT 't' || i AS item_id, ? AS text "
            f"FROM range({n}) t(i)",
            [text],
        )
        con.execute(
            "INSERT INTO label_events (dataset, item_id, label, status, annotator, session) "
            'SELECT \'texts\', item_id, \'[{"start": 0, "end": 3, "label": "PER"}, '
            '{"start": 19, "end": 25, "label": "LOC"}]\', \'labeled\', \'ann\', \'bench\' '
            "FROM dataset_texts"
        )
        sync_item_state(con, "texts", session="bench")
    return project, "texts"


def timed(project, dataset: str, fmt: str, path: Path) -> tuple[float, int]:
    from active_labeling.exports import export_labels_as

    with project.connect(read_only=True) as con:
        start = time.perf_counter()
        result = export_labels_as(con, project, dataset, fmt, path)
        seconds = time.perf_counter() - start
    return seconds, result.items


def timed_copy(project, dataset: str, path: Path) -> float:
    """The baseline: the current labels joined with their items, COPY'd to a CSV file."""
    with project.connect(read_only=True) as con:
        start = time.perf_counter()
        con.execute(
            f"COPY (SELECT c.item_id, c.label, c.annotator, c.created_at, d.* EXCLUDE (item_id) "
            f"FROM current_labels c JOIN dataset_{dataset} d ON d.item_id = c.item_id "
            f"WHERE c.dataset = '{dataset}' ORDER BY c.event_id) TO '{path}' (FORMAT csv)"
        )
        return time.perf_counter() - start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(quick: bool) -> dict:
    n = 5_000 if quick else 100_000
    scratch = Path(tempfile.mkdtemp(prefix="bench-exports-"))
    rows, targets = [], []
    try:
        for kind, make, formats in (
            ("boxes", make_boxes, ["coco", "yolo", "voc", "label-studio"]),
            ("spans", make_spans, ["conll", "spacy-jsonl", "label-studio"]),
        ):
            warm, warm_dataset = make(scratch / f"warm-{kind}", 1_000)
            for fmt in formats:
                timed(warm, warm_dataset, fmt, scratch / f"warm-{kind}-{fmt}.out")
            project, dataset = make(scratch / kind, n)
            baseline = timed_copy(project, dataset, scratch / f"{kind}-copy.csv")
            rows.append(
                [kind, "baseline: DuckDB COPY of the rows", f"{n:,}", fmt_s(baseline), "1.0 x"]
            )
            for fmt in ["csv", *formats]:
                out = scratch / (f"{kind}.csv" if fmt == "csv" else f"{kind}-{fmt}.out")
                seconds, items = timed(project, dataset, fmt, out)
                assert items == n
                rows.append(
                    [
                        kind,
                        fmt,
                        f"{n:,}",
                        fmt_s(seconds),
                        fmt_ratio(seconds / baseline),
                    ]
                )
                targets.append(
                    target(
                        f"{kind} {fmt}: {n:,} items <= {TARGET_S:g} s",
                        fmt,
                        fmt_s(seconds),
                        seconds <= TARGET_S,
                    )
                )
                if out.is_dir():
                    shutil.rmtree(out)
                else:
                    out.unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "title": f"Exports: {n:,} labeled items in each format",
        "about": __doc__.split("\n\n", 1)[1].strip().replace("\n", " "),
        "tables": [
            {
                "caption": "Wall time of one export (after a warm-up)",
                "columns": ["task", "format", "items", "time", "/ COPY"],
                "rows": rows,
                "footnote": "The csv export decides every item's label in pandas (its "
                "columns say how each was decided: label_source, consensus, raw_labels); the "
                "formats decide only the items labeled twice or reviewed (none here) and stream "
                "the rest in batches; yolo and voc write one file per image. The process's peak "
                f"resident memory after every export: {peak_rss_mib():.0f} MiB.",
            }
        ],
        "targets": targets,
    }


if __name__ == "__main__":
    main(NAME, run)
