"""The monitoring recipe on a pool of 1,000,000 rows x 50 columns, with a sample of 10,000.

A project holds the pool (the Parquet file of ``bench_flow``, imported), 2,000 labels and a
model version 1 trained on them, then 500 more labels and version 2. Three calls, each in a
fresh child process on a fresh copy of the project:

- ``next``: ``flow.monitoring.monitor`` when version 1 is measured already (the sample is
  stored): it measures version 2 alone, the cost of every scenario run;
- ``first``: the first run, which draws and stores the sample and measures both versions;
- ``baseline``: the least any contradiction measure must do: read the same 10,000 sample
  rows from the store, load both versions and compare their predictions.

The same three on a pool ten times smaller show whether time and memory grow with the pool
(they should follow the sample and the labels, not the pool).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from _common import BENCH_DIR, fmt_mib, fmt_ratio, fmt_s, main, measure_peak, median, run_child
from _common import target as make_target
from bench_flow import N_COLUMNS, write_pool

SCRIPT = Path(__file__).resolve()
CACHE = BENCH_DIR / ".cache"
N_LABELS = 2_000
N_BATCH = 500
SAMPLE = 10_000
GIB = 1024.0  # MiB


def prepare_project(parquet: Path, root: Path) -> tuple[Path, Path]:
    """Two copies of a project with versions 1 and 2: nothing measured yet, and version 1
    measured (the state before every later run). Returns their folders."""
    import pyarrow.parquet as pq

    from active_labeling.flow.monitoring import MonitoringParams, monitor
    from active_labeling.flow.project import Project
    from active_labeling.flow.train_model import TrainModelParams, train_model
    from active_labeling.store import datasets, labels

    fresh = root / "fresh"
    features = [f"f{j}" for j in range(N_COLUMNS)]
    project = Project.init(fresh, classes=["yes", "no"], id_column="id", feature_columns=features)
    truth = pq.read_table(parquet, columns=["id", "truth"]).slice(0, N_LABELS + N_BATCH)
    truth = truth.to_pandas().rename(columns={"truth": "label"})
    truth.iloc[:N_LABELS].to_csv(fresh / "labels-1.csv", index=False)
    truth.iloc[N_LABELS:].to_csv(fresh / "labels-2.csv", index=False)
    params = TrainModelParams(cv_folds=2)
    with project.connect() as con:
        project.record_dataset(datasets.import_file(con, "pool", parquet, id_column="id"))
        labels.import_labels(con, "pool", fresh / "labels-1.csv", classes=["yes", "no"])
        train_model(con, project, dataset="pool", model="clf", params=params)
        labels.import_labels(
            con, "pool", fresh / "labels-2.csv", classes=["yes", "no"], annotator="ann"
        )
        train_model(con, project, dataset="pool", model="clf", params=params)
    measured = root / "measured"
    shutil.copytree(fresh, measured)
    hidden = measured / "models" / "clf" / ".v2"
    (measured / "models" / "clf" / "2").rename(hidden)
    project = Project.open(measured)
    with project.connect() as con:
        monitor(con, project, dataset="pool", model="clf", params=MonitoringParams())
    hidden.rename(measured / "models" / "clf" / "2")
    return fresh, measured


# --- children: one measured call each, in a fresh process ------------------------------------


def child(spec: dict) -> dict:
    from active_labeling.flow.monitoring import MonitoringParams, monitor
    from active_labeling.flow.project import Project
    from active_labeling.models import load_model

    root = Path(spec["workdir"]) / f"copy-{spec['mode']}-{spec['round']}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(spec["project"], root)
    try:
        project = Project.open(root)
        con = project.connect()
        if spec["mode"] in ("next", "first"):

            def call():
                result = monitor(
                    con, project, dataset="pool", model="clf", params=MonitoringParams()
                )
                assert result.versions == (["2"] if spec["mode"] == "next" else ["1", "2"])

        else:

            def call():
                sample = con.execute(
                    "SELECT d.* FROM dataset_pool d JOIN monitoring_samples s USING (item_id) "
                    "ORDER BY s.position"
                ).df()
                first = load_model(project.models_dir, "clf", "1")
                second = load_model(project.models_dir, "clf", "2")
                columns = first.meta.feature_columns
                changed = first.pipeline.predict(sample[columns]) != second.pipeline.predict(
                    sample[columns]
                )
                assert len(changed) == SAMPLE
                return changed.mean()

        if spec["measure"] == "memory":
            result = measure_peak(call)
        else:
            start = time.perf_counter()
            call()
            result = {"seconds": time.perf_counter() - start}
        con.close()
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the parent ------------------------------------------------------------------------------


def run(quick: bool) -> dict:
    sizes = [20_000, 100_000] if quick else [100_000, 1_000_000]
    rounds = 2 if quick else 3
    modes = ("next", "first", "baseline")
    CACHE.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(dir=CACHE))
    runs: dict[tuple[int, str], list[dict]] = {}
    peaks: dict[tuple[int, str], dict] = {}
    setup: dict[int, float] = {}
    try:
        for n_rows in sizes:
            parquet = write_pool(CACHE / f"pool-{n_rows}.parquet", n_rows)
            start = time.perf_counter()
            fresh, measured = prepare_project(parquet, workdir / f"project-{n_rows}")
            setup[n_rows] = time.perf_counter() - start
            projects = {"next": measured, "first": fresh, "baseline": measured}
            for r in range(rounds + 1):
                measure = "memory" if r == rounds else "time"
                for mode in modes if r % 2 == 0 else modes[::-1]:
                    spec = {
                        "mode": mode,
                        "round": r,
                        "measure": measure,
                        "project": str(projects[mode]),
                        "workdir": str(workdir),
                    }
                    result = run_child(SCRIPT, spec)
                    if measure == "memory":
                        peaks[(n_rows, mode)] = result
                    else:
                        runs.setdefault((n_rows, mode), []).append(result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    errors = [f"{key}: {r['error']}" for key, rs in runs.items() for r in rs if "error" in r]
    errors += [f"{key}: {r['error']}" for key, r in peaks.items() if "error" in r]
    if errors:
        return {
            "title": "Monitoring recipe on a 1,000,000-row pool (failed)",
            "about": "\n".join(errors),
            "tables": [],
            "targets": [],
        }

    def seconds(key):
        return median([r["seconds"] for r in runs[key]])

    def ratio(a, b):
        pairs = zip(runs[a], runs[b], strict=True)
        return median([x["seconds"] / y["seconds"] for x, y in pairs])

    names = {
        "next": "monitor: version 2 (version 1 measured, sample stored)",
        "first": "monitor: first run (draws the sample, measures versions 1 and 2)",
        "baseline": "baseline: read the sample, load both versions, compare predictions",
    }
    rows = []
    for n_rows in sizes:
        for mode in modes:
            key = (n_rows, mode)
            vs = "1.00" if mode == "baseline" else fmt_ratio(ratio(key, (n_rows, "baseline")))
            rows.append(
                [
                    f"{n_rows:,}",
                    names[mode],
                    fmt_s(seconds(key)),
                    vs,
                    fmt_mib(peaks[key]["call_rss_peak_mib"]),
                    fmt_mib(peaks[key]["tracemalloc_peak_mib"]),
                    fmt_mib(peaks[key]["ru_maxrss_mib"]),
                ]
            )
    small, large = sizes
    full = not quick
    next_ratio = ratio((large, "next"), (large, "baseline"))
    growth_time = seconds((large, "next")) / seconds((small, "next"))
    traced = {n: peaks[(n, "next")]["tracemalloc_peak_mib"] for n in sizes}
    growth_memory = traced[large] / traced[small]
    whole_child = peaks[(large, "first")]["ru_maxrss_mib"]
    label = f"{large:,} rows, sample {SAMPLE:,}"
    return {
        "title": f"Monitoring recipe on a {large:,}-row pool with a sample of {SAMPLE:,}",
        "about": (
            f"`flow.monitoring.monitor` on a project whose pool is {large:,} x {N_COLUMNS} "
            f"float columns (the Parquet pool of the flow benchmark, imported), with "
            f"{N_LABELS:,} labels for model version 1 (logistic regression) and {N_BATCH} "
            "more for version 2, no holdout (the versions' own cross-validated scores are "
            "read from their metadata). All metrics of a version: contradictions and mean "
            f"confidence on the {SAMPLE:,}-row sample, exploration distance and gain, batch "
            "agreement and easiness, uncertainty variance, class balance, labels per hour, "
            "labeler agreement, and the stopping advice. Each call runs in a fresh child "
            f"process on a fresh copy of the project: {rounds} timed rounds interleaved "
            "(medians; ratios are medians of per-round ratios), then one run of each under "
            "memory measurement. The same on a pool of "
            f"{small:,} rows shows what grows with the pool."
        ),
        "tables": [
            {
                "caption": "Time and peak memory",
                "columns": [
                    "pool rows",
                    "call",
                    "time",
                    "x baseline",
                    "peak RSS of the call",
                    "tracemalloc peak",
                    "ru_maxrss of the child",
                ],
                "rows": rows,
            }
        ],
        "targets": [
            make_target(
                "a later run (one version) <= 10 x the bare contradiction measure",
                label,
                fmt_ratio(next_ratio),
                next_ratio <= 10 if full else None,
            ),
            make_target(
                "a later run's Python memory grows < 2 x for a pool 10 x larger",
                f"{small:,} -> {large:,} rows",
                f"{fmt_mib(traced[small])} -> {fmt_mib(traced[large])} ({growth_memory:.2f} x)",
                growth_memory < 2 if full else None,
            ),
            make_target(
                "first run peak memory <= 1.5 GiB (whole child)",
                label,
                fmt_mib(whole_child),
                whole_child <= 1.5 * GIB if full else None,
            ),
        ],
        "notes": [
            f"A later run on the {large:,}-row pool took {growth_time:.2f} x the time on "
            f"{small:,} rows.",
            "Setup (import, labels, two trainings with 2-fold cross-validation, one "
            "monitoring run) is not measured: "
            + ", ".join(f"{setup[n]:.0f} s for {n:,} rows" for n in sizes)
            + ".",
        ],
    }


if __name__ == "__main__":
    main("monitoring", run, child)
