"""Small projects on disk for the store, flow and CLI tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from active_labeling.flow.project import Project
from active_labeling.store import datasets


def write_pool_csv(path: Path, n: int = 300, seed: int = 0) -> Path:
    """A mixed pool: a numeric, a categorical and a text column, ids I0..I{n-1}."""
    rng = np.random.default_rng(seed)
    words = ["good", "bad", "nice", "poor", "great", "awful"]
    lines = ["id,age,city,review"]
    for i in range(n):
        review = " ".join(rng.choice(words, 4))
        lines.append(
            f"I{i},{rng.normal(40, 10):.1f},{rng.choice(['Paris', 'Lyon', 'Nice'])},{review}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_labels_csv(path: Path, ids, labels) -> Path:
    path.write_text(
        "id,label\n" + "".join(f"{i},{y}\n" for i, y in zip(ids, labels, strict=True)),
        encoding="utf-8",
    )
    return path


def make_project(root: Path, n: int = 300, n_labels: int = 40) -> Project:
    """A project with dataset 'pool' and ``n_labels`` imported labels (two classes)."""
    from active_labeling.store import labels

    project = Project.init(root, classes=["yes", "no"], id_column="id")
    pool_csv = write_pool_csv(root / "pool.csv", n)
    with project.connect() as con:
        info = datasets.import_file(con, "pool", pool_csv, id_column="id")
        project.record_dataset(info)
        if n_labels:
            ids = [f"I{i}" for i in range(0, n, max(1, n // n_labels))][:n_labels]
            labels.import_labels(
                con,
                "pool",
                write_labels_csv(root / "labels.csv", ids, ["yes", "no"] * (len(ids) // 2)),
                classes=["yes", "no"],
            )
    return project


def store_fingerprint(project: Project) -> str:
    """A digest of every table's content and of project.toml: equal means untouched."""
    digest = hashlib.sha256(project.config_path.read_bytes())
    with project.connect(read_only=True) as con:
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM duckdb_tables() ORDER BY table_name"
            ).fetchall()
        ]
        for table in tables:
            digest.update(table.encode())
            rows = con.execute(f'SELECT * FROM "{table}"').fetchall()
            digest.update(repr(sorted(map(repr, rows))).encode())
    models = sorted(str(p.relative_to(project.root)) for p in project.models_dir.rglob("*"))
    digest.update(repr(models).encode())
    return digest.hexdigest()


def declare_train_and_query(project: Project, *, run: bool = False, **query_params) -> None:
    """Declare recipes 'train' (model 'clf') and 'query' (queue 'queue'); run them if asked."""
    from active_labeling.flow.recipes import add_recipe, run_recipe

    add_recipe(
        project,
        "train-model",
        "train",
        inputs={"dataset": ["pool"], "labels": ["labels"]},
        outputs={"model": ["clf"]},
        params={"cv_folds": 3},
    )
    add_recipe(
        project,
        "query-sampler",
        "query",
        inputs={"pool": ["pool"], "model": ["clf"]},
        outputs={"queue": ["queue"]},
        params=query_params,
    )
    if run:
        run_recipe(project, "train", progress=False)
        run_recipe(project, "query", progress=False)


#: The classes of the multi-label test projects.
COLORS = ["red", "green", "blue"]


def multilabel_rows(n: int, seed: int = 0):
    """Features x1..x3 and label sets: class j where x_j plus a little noise is positive."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    Y = (X + 0.3 * rng.normal(size=(n, 3)) > 0).astype(int)
    return X, Y


def write_multilabel_files(root: Path, n: int = 200, n_labels: int = 40, seed: int = 0):
    """``pool.csv`` (id, x1, x2, x3) and ``labels.csv`` (id, label as a JSON list) for the
    first ``n_labels`` items; returns their paths."""
    import json

    import pandas as pd

    X, Y = multilabel_rows(n, seed)
    pool = pd.DataFrame({"id": [f"I{i}" for i in range(n)], "x1": X[:, 0], "x2": X[:, 1]})
    pool["x3"] = X[:, 2]
    pool_path = root / "pool.csv"
    root.mkdir(parents=True, exist_ok=True)
    pool.to_csv(pool_path, index=False)
    sets = [json.dumps([c for c, y in zip(COLORS, row, strict=True) if y]) for row in Y]
    labels = pd.DataFrame({"id": pool["id"][:n_labels], "label": sets[:n_labels]})
    labels_path = root / "labels.csv"
    labels.to_csv(labels_path, index=False)
    return pool_path, labels_path


def make_multilabel_project(root: Path, n: int = 200, n_labels: int = 40, **settings) -> Project:
    """A multi-label project (classes red, green, blue) with dataset 'pool' and imported
    label sets for its first ``n_labels`` items."""
    from active_labeling.store import labels

    project = Project.init(root, classes=COLORS, id_column="id", multi_label=True, **settings)
    pool_path, labels_path = write_multilabel_files(root, n, n_labels)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", pool_path, id_column="id"))
        if n_labels:
            labels.import_labels(
                con,
                "pool",
                labels_path,
                classes=COLORS,
                multi_label=True,
                allow_empty=project.settings.allow_empty,
            )
    return project
