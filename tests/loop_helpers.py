"""An easy labeling problem on disk, and an oracle that labels it, for the loop tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from active_labeling.flow.project import Project
from active_labeling.store import datasets
from active_labeling.store.labels import LabelEvent, append_events


def blobs(n: int, seed: int, gap: float = 3.0) -> tuple[list[str], np.ndarray, list[str]]:
    """Two well separated Gaussian blobs in 2-D, shuffled: ids, features, true classes."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + np.where(truth[:, None] == 1, gap, -gap) * np.array([1, 0.5])
    ids = [f"{'H' if seed else 'P'}{i}" for i in range(n)]
    return ids, X, ["a" if t == 0 else "b" for t in truth]


def write_blobs_csv(path: Path, n: int, seed: int, *, with_label: bool = False) -> dict:
    ids, X, truth = blobs(n, seed)
    header = "id,x1,x2" + (",label" if with_label else "")
    lines = [header]
    for i, (x1, x2), y in zip(ids, X, truth, strict=True):
        lines.append(f"{i},{x1:.4f},{x2:.4f}" + (f",{y}" if with_label else ""))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dict(zip(ids, truth, strict=True))


def make_blobs_project(root: Path, n: int = 400, n_holdout: int = 0) -> tuple[Project, dict]:
    """A project labeling 'pool' (two blobs, classes a/b; features x1, x2), optionally with a
    labeled 'holdout' dataset. Returns the project and the oracle (item id -> class)."""
    project = Project.init(root, classes=["a", "b"], id_column="id", feature_columns=["x1", "x2"])
    oracle = write_blobs_csv(root / "pool.csv", n, seed=0)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", root / "pool.csv", id_column="id"))
        if n_holdout:
            write_blobs_csv(root / "holdout.csv", n_holdout, seed=1, with_label=True)
            info = datasets.import_file(con, "holdout", root / "holdout.csv", id_column="id")
            project.record_dataset(info)
    return project, oracle


def label(con, oracle: dict, item_ids, annotator: str = "ann", *, wrong: bool = False) -> None:
    """Label ``item_ids`` as the oracle says (or the other class, with ``wrong``)."""
    flip = {"a": "b", "b": "a"}
    append_events(
        con,
        [
            LabelEvent(
                "pool",
                item,
                "labeled",
                annotator,
                label=flip[oracle[item]] if wrong else oracle[item],
                lead_time_ms=3_000,
            )
            for item in item_ids
        ],
    )
