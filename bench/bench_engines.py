"""The query sampler on 10,000,000 x 50 rows of Parquet: local streaming, Dask and Spark.

1. Scale: the pool is 10 Parquet files of 1,000,000 rows x 50 float32 columns, registered
   in place (no copy into the store), 2,000 of its rows labeled, a logistic-regression
   pipeline trained on them. The query sampler (margin, queue of 100, chunks of 50,000)
   runs with the local engine (streaming from the store), on a local Dask cluster (2 worker
   processes, 1 thread each) and on Spark in local mode (``local[2]``), each in a fresh
   child process. Reported: wall time of the call, start-up of the cluster or session
   apart, peak RSS sampled every 50 ms for the driver's Python process, the JVM (Spark) and
   the worker processes; the three queues must be identical. Per-partition times are kept
   for the scaling estimate of docs/engines.md.
2. Quality: on a pool that fits in memory (200,000 x 50), each strategy that compares rows
   runs on the local engine (whole pool) and in two stages on Dask (8 partitions): overlap
   of the selections, covering radius, mean distance to the nearest labeled or selected
   row, mean margin of the selected rows. A random selection is the reference.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
from _common import BENCH_DIR, fmt_mib, fmt_s, main, median, run_child, target

SCRIPT = Path(__file__).resolve()
CACHE = BENCH_DIR / ".cache" / "engines"
N_COLUMNS = 50
N_LABELS = 2_000
CHUNK_ROWS = 50_000
QUEUE_SIZE = 100
ENGINES = ("local", "dask", "spark")


# --- data ---------------------------------------------------------------------------------


def write_pool(n_rows: int, n_files: int, group_rows: int = 100_000) -> Path:
    """``n_files`` Parquet files of float32 features (and a hidden ``truth``), written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = CACHE / f"pool-{n_rows}x{N_COLUMNS}-f32-{n_files}files-g{group_rows}"
    if (folder / "COMPLETE").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    weights = np.random.default_rng(0).normal(size=N_COLUMNS) * (2.0 / np.sqrt(N_COLUMNS))
    per_file = n_rows // n_files
    for f in range(n_files):
        partial = folder / f".part-{f:03d}.partial"
        writer = None
        for start in range(0, per_file, group_rows):
            rows = min(group_rows, per_file - start)
            values = rng.standard_normal((rows, N_COLUMNS), dtype=np.float32)
            noise = rng.logistic(size=rows)
            columns = {f"f{j}": values[:, j] for j in range(N_COLUMNS)}
            columns["truth"] = np.where(values @ weights + noise > 0, "yes", "no")
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(partial, table.schema)
            writer.write_table(table, row_group_size=group_rows)
        writer.close()
        partial.rename(folder / f"part-{f:03d}.parquet")
    (folder / "COMPLETE").write_text("")
    return folder


def prepare_project(folder: Path, root: Path, n_labels: int) -> Path:
    """A project whose pool is ``folder``'s files read in place, with labels and a model."""
    import pyarrow.parquet as pq

    from active_labeling.flow.project import Project
    from active_labeling.flow.train_model import TrainModelParams, train_model
    from active_labeling.store import datasets, labels

    shutil.rmtree(root, ignore_errors=True)
    features = [f"f{j}" for j in range(N_COLUMNS)]
    project = Project.init(root, classes=["yes", "no"], feature_columns=features)
    files = sorted(folder.glob("part-*.parquet"))
    per_file = pq.ParquetFile(files[0]).metadata.num_rows
    positions = np.linspace(0, per_file * len(files) - 1, n_labels).astype(np.int64)
    lines = ["id,label"]
    for f, path in enumerate(files):
        rows = positions[(positions >= f * per_file) & (positions < (f + 1) * per_file)]
        rows = rows - f * per_file
        truth = pq.read_table(path, columns=["truth"]).column("truth").take(rows).to_pylist()
        lines += [f"{path.name}:{r + 1},{t}" for r, t in zip(rows.tolist(), truth, strict=True)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    with project.connect() as con:
        info = datasets.register_parquet(con, "pool", str(folder / "part-*.parquet"))
        project.record_dataset(info)
        labels.import_labels(con, "pool", root / "labels.csv", classes=["yes", "no"])
        train_model(con, project, dataset="pool", model="clf", params=TrainModelParams(cv_folds=2))
    return root


# --- memory of the driver and its children ----------------------------------------------------


class PeakSampler:
    """Peak RSS of this process, of its JVM children and of its Python children (50 ms)."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.me = psutil.Process()
        self.interval = interval
        self.peaks = {"driver": 0, "jvm": 0, "workers": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        now = {"driver": self.me.memory_info().rss, "jvm": 0, "workers": 0}
        for child in self.me.children(recursive=True):
            try:
                name = child.name().lower()
                rss = child.memory_info().rss
            except psutil.Error:
                continue
            now["jvm" if "java" in name else "workers"] += rss
        for key, value in now.items():
            self.peaks[key] = max(self.peaks[key], value)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def _cpu(self) -> dict[int, float]:
        """CPU seconds (user + system) of this process and of each descendant, by pid."""
        import psutil

        out = {}
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            out[proc.pid] = times.user + times.system
        return out

    def __enter__(self):
        self._cpu_before = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        after = self._cpu()
        self.cpu_seconds = sum(t - self._cpu_before.get(pid, 0.0) for pid, t in after.items())

    def mib(self) -> dict:
        return {key: value / 2**20 for key, value in self.peaks.items()}


# --- children ---------------------------------------------------------------------------------


def _engine(name: str, quick: bool):
    """The engine, what to close after, and how long it took to start."""
    start = time.perf_counter()
    if name == "local":
        from active_labeling.flow.engines import LocalEngine

        return LocalEngine(), (lambda: None), 0.0
    if name == "dask":
        from distributed import Client, LocalCluster

        from active_labeling.flow.engines.dask import DaskEngine

        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
        rows = 100_000 if quick else None
        engine = DaskEngine(client=client, **({"partition_rows": rows} if rows else {}))
        return engine, (lambda: (client.close(), cluster.close())), time.perf_counter() - start
    from pyspark.sql import SparkSession

    from active_labeling.flow.engines.spark import SparkEngine

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .appName("active-labeling bench")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return SparkEngine(session=session), session.stop, time.perf_counter() - start


def child_scale(spec: dict) -> dict:
    from active_labeling.flow.project import Project
    from active_labeling.flow.query_sampler import QuerySamplerParams, query_sampler
    from active_labeling.store import queue

    with PeakSampler() as startup:
        engine, close, startup_seconds = _engine(spec["engine"], spec["quick"])
    stats: dict = {}
    select = engine.select

    def recording(job):
        selection = select(job)
        stats.update(selection.stats)
        return selection

    engine.select = recording
    project = Project.open(spec["project"])
    params = QuerySamplerParams(
        strategy="margin", queue_size=QUEUE_SIZE, chunk_size=CHUNK_ROWS, engine=engine.name
    )
    calls = []
    try:
        # Dask and Spark twice: the first call also pays the workers' imports and first
        # model load; the second is what a long-running cluster costs.
        for _ in range(1 if spec["engine"] == "local" else 2):
            stats.clear()
            with project.connect() as con, PeakSampler() as peaks:
                start = time.perf_counter()
                result = query_sampler(
                    con,
                    project,
                    dataset="pool",
                    model="clf",
                    queue="bench",
                    params=params,
                    engine=engine,
                )
                seconds = time.perf_counter() - start
                ids = queue.generation_items(con, result.generation.generation_id)["item_id"]
            calls.append(
                {
                    "seconds": seconds,
                    "peak_mib": peaks.mib(),
                    "cpu_seconds": peaks.cpu_seconds,
                    "ids": ids.tolist(),
                    "pool_rows": result.generation.pool_rows,
                    "stats": dict(stats),
                }
            )
    finally:
        close()
    return {"startup_seconds": startup_seconds, "startup_peak_mib": startup.mib(), "calls": calls}


#: Quality cases: (strategy, partition_candidates or None for the default).
QUALITY_CASES = [
    ("random", None),
    ("wkmeans", None),
    ("kcenter", None),
    ("kcenter", 8),
    ("badge", None),
    ("kmeans", 20),
    ("kmeans", None),
    ("kmeans", 500),
    ("typiclust", None),
    ("typiclust", 500),
]
#: Strategies whose selection depends on a random draw: a second local run with another
#: seed tells how much two equally good selections overlap.
RANDOMIZED = {"badge", "kmeans", "typiclust"}


def child_quality(spec: dict) -> dict:
    """Every whole-pool strategy, local against two stages on Dask (in-process, 2 workers)."""
    from distributed import Client, LocalCluster

    from active_labeling.flow.engines import LocalEngine
    from active_labeling.flow.engines.dask import DaskEngine
    from active_labeling.flow.project import Project
    from active_labeling.flow.query_sampler import QuerySamplerParams, query_sampler
    from active_labeling.models import load_model
    from active_labeling.samplers._geometry import min_squared_distances
    from active_labeling.samplers.scores import margin
    from active_labeling.store import labels, queue

    project = Project.open(spec["project"])
    q = spec["queue_size"]
    saved = load_model(project.models_dir, "clf")
    columns = saved.meta.feature_columns
    with project.connect(read_only=True) as con:
        frame = con.execute("SELECT * FROM dataset_pool").df()
        labeled = labels.labeled_item_ids(con, "pool")
    is_labeled = frame["item_id"].isin(labeled).to_numpy()
    X = np.asarray(saved.pipeline[:-1].transform(frame[columns]), dtype=np.float64)
    proba = saved.pipeline.predict_proba(frame[columns])
    row_of = {item: i for i, item in enumerate(frame["item_id"])}
    pool_X = X[~is_labeled]

    def measures(ids: list[str]) -> dict:
        chosen = np.array([row_of[i] for i in ids])
        centers = np.vstack([X[is_labeled], X[chosen]])
        d = np.sqrt(min_squared_distances(pool_X, centers))
        return {
            "radius": float(d.max()),
            "mean_distance": float(d.mean()),
            "mean_margin": float(margin(proba[chosen]).mean()),
        }

    warnings.simplefilter("ignore")
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    client = Client(cluster)
    dask = DaskEngine(client=client, partition_rows=len(frame) // spec["partitions"])
    stats: dict = {}
    select = dask.select

    def recording(job):
        selection = select(job)
        stats.clear()
        stats.update(selection.stats)
        return selection

    dask.select = recording
    results = []
    local_ids: dict[str, list[str]] = {}

    def run(con, strategy, engine, *, candidates=None, seed=0):
        params = QuerySamplerParams(
            strategy=strategy,
            queue_size=q,
            chunk_size=CHUNK_ROWS,
            random_state=seed,
            engine=engine.name,
            partition_candidates=candidates,
        )
        start = time.perf_counter()
        result = query_sampler(
            con,
            project,
            dataset="pool",
            model="clf",
            queue="quality",
            params=params,
            engine=engine,
        )
        seconds = time.perf_counter() - start
        ids = queue.generation_items(con, result.generation.generation_id)["item_id"].tolist()
        return ids, seconds

    def record(strategy, engine, ids, seconds, candidates=None):
        overlap = len(set(ids) & set(local_ids[strategy])) / q
        results.append(
            {
                "strategy": strategy,
                "engine": engine,
                "partitions": stats.get("partitions") if engine == "dask" else None,
                "candidates": candidates,
                "seconds": seconds,
                "overlap": overlap,
                **measures(ids),
            }
        )

    try:
        with project.connect() as con:
            for strategy, factor in QUALITY_CASES:
                if strategy not in local_ids:
                    ids, seconds = run(con, strategy, LocalEngine())
                    local_ids[strategy] = ids
                    record(strategy, "local", ids, seconds)
                    if strategy in RANDOMIZED:
                        ids, seconds = run(con, strategy, LocalEngine(), seed=1)
                        record(strategy, "local, another seed", ids, seconds)
                if strategy == "random":
                    continue  # the reference: local only
                candidates = factor * q if factor else None
                ids, seconds = run(con, strategy, dask, candidates=candidates)
                record(strategy, "dask", ids, seconds, candidates)
    finally:
        client.close()
        cluster.close()
    return {"results": results, "pool_rows": int((~is_labeled).sum())}


def child(spec: dict) -> dict:
    return child_quality(spec) if spec["mode"] == "quality" else child_scale(spec)


# --- the parent -------------------------------------------------------------------------------


def projection(stats: dict, seconds: float, machines: int, cores: int = 2) -> tuple[int, float]:
    """Waves and projected seconds of a call on ``machines`` of ``cores`` cores.

    The partitions run in waves of ``machines x cores``, each wave as long as the median
    partition measured here; the rest of the call (preparing, merging, writing the queue,
    the engine's own scheduling) is taken as measured.
    """
    per_partition = stats["partition_seconds"]
    waves = -(-len(per_partition) // (machines * cores))
    measured_waves = -(-len(per_partition) // cores)
    t_p = median(per_partition)
    rest = seconds - measured_waves * t_p
    return waves, rest + waves * t_p


def _us_per_row(stats: dict) -> float:
    """Microseconds per row on one core, over every partition (read, score, keep)."""
    return 1e6 * sum(stats["partition_seconds"]) / sum(stats["partition_rows"])


def run(quick: bool) -> dict:
    n_rows, n_files = (200_000, 4) if quick else (10_000_000, 10)
    quality_rows, quality_q = (20_000, 20) if quick else (200_000, 100)
    import psutil  # noqa: F401  (the bench extra; fail early rather than in a child)

    from active_labeling.flow.engines.partitioned import CANDIDATES_PER_QUEUE_ROW
    from active_labeling.flow.engines.spark import java_problem

    start = time.perf_counter()
    folder = write_pool(n_rows, n_files)
    # One row group per file, one file per Dask partition: 8 partitions.
    quality_folder = write_pool(quality_rows, 8, group_rows=quality_rows // 8)
    data_seconds = time.perf_counter() - start
    workdir = Path(tempfile.mkdtemp(dir=CACHE))
    notes = []
    engines = list(ENGINES)
    problem = java_problem()
    if problem:
        engines.remove("spark")
        notes.append(f"Spark not measured: {problem}.")
    try:
        start = time.perf_counter()
        project = prepare_project(folder, workdir / "project", N_LABELS)
        quality_project = prepare_project(quality_folder, workdir / "quality", 500)
        setup_seconds = time.perf_counter() - start
        runs: dict[str, dict] = {}
        loads = []
        for name in engines:
            loads.append(os.getloadavg()[0])
            spec = {"mode": "scale", "engine": name, "project": str(project), "quick": quick}
            runs[name] = run_child(SCRIPT, spec, timeout=7200)
        loads.append(os.getloadavg()[0])
        quality = run_child(
            SCRIPT,
            {
                "mode": "quality",
                "project": str(quality_project),
                "queue_size": quality_q,
                "partitions": 8,
            },
            timeout=7200,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    errors = [f"{e}: {r['error']}" for e, r in runs.items() if "error" in r]
    if "error" in quality:
        errors.append(f"quality: {quality['error']}")
    if errors:
        return {"title": "Engines: local, Dask, Spark (failed)", "about": "\n".join(errors)}

    rows_label = f"{n_rows:,} x {N_COLUMNS}"
    reference = runs["local"]["calls"][0]["ids"]
    same = all(c["ids"] == reference for r in runs.values() for c in r["calls"])
    local_seconds = runs["local"]["calls"][0]["seconds"]
    scale_rows = []
    for name in engines:
        calls = runs[name]["calls"]
        last = calls[-1]
        parts = last["stats"].get("partitions")
        peak = {k: max(c["peak_mib"][k] for c in calls) for k in ("driver", "jvm", "workers")}
        scale_rows.append(
            [
                name,
                fmt_s(calls[0]["seconds"]),
                fmt_s(last["seconds"]) if len(calls) > 1 else "-",
                f"{last['seconds'] / local_seconds:.2f}",
                fmt_s(runs[name]["startup_seconds"]) if name != "local" else "-",
                parts or "-",
                fmt_s(median(last["stats"]["partition_seconds"])) if parts else "-",
                f"{_us_per_row(last['stats']):.1f}" if parts else "-",
                f"{1e6 * last['cpu_seconds'] / last['pool_rows']:.1f}",
                fmt_mib(peak["driver"]),
                fmt_mib(peak["jvm"]) if name == "spark" else "-",
                fmt_mib(peak["workers"]) if name != "local" else "-",
            ]
        )
    scaling = []
    for name in engines:
        if name == "local":
            continue
        last = runs[name]["calls"][-1]
        for machines in (1, 2, 4, 8):
            waves, seconds = projection(last["stats"], last["seconds"], machines)
            scaling.append([name, machines, machines * 2, waves, fmt_s(seconds)])

    quality_table = []
    for res in quality["results"]:
        label = res["engine"]
        if res["engine"] == "dask":
            per = res["candidates"] or CANDIDATES_PER_QUEUE_ROW.get(res["strategy"], 0) * quality_q
            label += f", {res['partitions']} partitions"
            label += f", {per:,} candidates each" if per else ""
        quality_table.append(
            [
                res["strategy"],
                label,
                f"{res['overlap']:.0%}",
                f"{res['radius']:.3f}",
                f"{res['mean_distance']:.3f}",
                f"{res['mean_margin']:.3f}",
                fmt_s(res["seconds"]),
            ]
        )
    kcenter = {
        (r["engine"], r["candidates"]): r for r in quality["results"] if r["strategy"] == "kcenter"
    }
    radius_ratio = kcenter[("dask", None)]["radius"] / kcenter[("local", None)]["radius"]
    full = not quick
    targets = [target("same queue on every engine", rows_label, "yes" if same else "NO", same)]
    for name in engines[1:]:
        ratio = runs[name]["calls"][-1]["seconds"] / local_seconds
        targets.append(
            target(
                f"{name} (2 workers, second call) faster than local streaming",
                rows_label,
                f"{ratio:.2f} x local",
                ratio < 1 if full else None,
            )
        )
    targets.append(
        target(
            "kcenter covering radius, two stages <= 1.5 x local",
            f"{quality['pool_rows']:,} rows",
            f"{radius_ratio:.2f}",
            radius_ratio <= 1.5 if full else None,
        )
    )
    notes += [
        f"Writing the Parquet files took {data_seconds:.0f} s (once; cached in bench/.cache/); "
        f"the projects (registration in place, labels, training) {setup_seconds:.0f} s. "
        "Neither is measured.",
        "The features are stored as float32 (half the bytes of float64); the model was "
        "trained on them, and the query sampler reads them as float64 on every engine, so "
        "a row's score does not depend on the batch it is scored in (docs/engines.md).",
        "The Parquet files sit in the page cache (the machine has more memory than the "
        "pool): reading them costs decoding, not disk.",
        "1-minute load average before each scale child and after the last: "
        + ", ".join(f"{x:.2f}" for x in loads)
        + ".",
    ]
    return {
        "title": f"Engines: the query sampler on {rows_label} Parquet rows, local vs Dask vs Spark",
        "about": (
            f"The pool is {n_files} Parquet files ({rows_label} float32, row groups of "
            f"100,000 rows) registered in place; {N_LABELS:,} rows labeled; margin with a "
            f"queue of {QUEUE_SIZE}, chunks of {CHUNK_ROWS:,} rows. Each engine runs in a "
            "fresh child process; Dask (a local cluster of 2 worker processes, 1 thread "
            "each) and Spark (local[2]) are called twice: the first call also pays the "
            "workers' imports and first model load, the second is what a running cluster "
            "costs. Memory is the peak RSS sampled every 50 ms during the calls: the driver "
            "(the Python process calling the query sampler), the JVM (Spark's, a child of "
            "the driver) and the worker processes (Dask's; Spark's Python workers). "
            "Start-up of the cluster or session is measured apart. Per row: the wall time "
            "inside the partitions (each on one thread) over the rows they scored, and the "
            "CPU time of the driver and all its child processes during the call over the "
            "unlabeled rows. Quality: "
            f"{quality['pool_rows']:,} unlabeled rows that fit in memory, queue of "
            f"{quality_q}, 500 labeled, Dask with 8 partitions; covering radius and mean "
            "distance are measured in the model's feature space from every unlabeled row "
            "to its nearest labeled or selected row (lower is better); margin is the mean "
            "margin score of the selected rows (higher is more uncertain)."
        ),
        "tables": [
            {
                "caption": f"Margin, queue of {QUEUE_SIZE}, on {rows_label} rows",
                "columns": [
                    "engine",
                    "first call",
                    "second call",
                    "x local",
                    "start-up (apart)",
                    "partitions",
                    "median s / partition",
                    "µs / row in a partition",
                    "CPU µs / row, all processes",
                    "driver peak",
                    "JVM peak",
                    "workers peak",
                ],
                "rows": scale_rows,
                "footnote": "Same queue on every engine and call: " + ("yes" if same else "NO"),
            },
            {
                "caption": "Projected second call on n machines of 2 cores (the same pool; "
                "model in docs/engines.md)",
                "columns": ["engine", "machines", "cores", "waves", "projected call"],
                "rows": scaling,
            },
            {
                "caption": "Quality of two-stage selection against the local engine",
                "columns": [
                    "strategy",
                    "engine",
                    "overlap with local",
                    "covering radius",
                    "mean distance",
                    "mean margin",
                    "time",
                ],
                "rows": quality_table,
            },
        ],
        "targets": targets,
        "notes": notes,
    }


if __name__ == "__main__":
    main("engines", run, child)
