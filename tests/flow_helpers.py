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
