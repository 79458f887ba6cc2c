"""The experiment folder: a cache a person can read, that survives a kill at any moment.

::

    DIR/
      config.toml          the validated config (absolute paths): resume, replay and report
                           need nothing but DIR
      experiment.json      format, creation time, data digest, the logged measures
      data.parquet         the snapshot of the rows (see ``experiment.data``)
      runs/<strategy>/seed-<k>/            (seed-<k>-half-<h> when the halves are swapped)
        selected.csv       iteration, position, row_id, label: every labeled row, with the
                           iteration it joined (0 = the initial sample) and the label the
                           oracle gave
        metrics.csv        one row per iteration: n_labeled and every logged measure
      log.duckdb           every run's iterations, selections and AUCs, for SQL; rebuilt
                           from the run files after each run or resume
      report/, replay.csv  written by ``report`` and ``replay``

Each run file is rewritten whole through a temporary file and a rename after every
iteration, so it is always either the old or the new version, never half a line. The
selection of an iteration is written before its metrics; resuming keeps the iterations
present in both files and drops anything after (see ``RunFiles.completed``). The run
files are the truth; ``log.duckdb`` is derived from them and can always be rebuilt.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from active_labeling.errors import ActiveLabelingError, InputError
from active_labeling.experiment.config import ExperimentConfig, parse_config
from active_labeling.experiment.data import ExperimentData, file_digest, read_snapshot

#: 2: distance strategies see the model's feature space (``model.strategy_features``).
FORMAT = 2
CONFIG_FILE = "config.toml"
META_FILE = "experiment.json"
DATA_FILE = "data.parquet"
LOG_FILE = "log.duckdb"
SELECTED_FILE = "selected.csv"
METRICS_FILE = "metrics.csv"
#: Written by runs of strategy "auto": the strategy each iteration ran, and why.
AUTO_FILE = "auto.csv"
SELECTED_COLUMNS = ["iteration", "position", "row_id", "label"]


class RunBusyError(ActiveLabelingError):
    """Another process is writing a run (a worker left over from a killed run, or a second
    ``resume``)."""


@dataclass(frozen=True, order=True)
class RunKey:
    """One run: a strategy (its key in the config), a seed, and a half when swapping."""

    strategy: str
    seed: int
    half: int | None = None

    @property
    def name(self) -> str:
        """The run's folder name under ``runs/<strategy>/``.

        Examples
        --------
        >>> RunKey("margin", 3).name, RunKey("margin", 3, half=1).name
        ('seed-3', 'seed-3-half-1')
        """
        return f"seed-{self.seed}" if self.half is None else f"seed-{self.seed}-half-{self.half}"

    def __str__(self) -> str:
        return f"{self.strategy}/{self.name}"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, flushed to disk, then a rename."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def format_value(value) -> str:
    """A number as text that reads back to the same float (``repr``); NaN as empty."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def parse_value(text: str) -> float | int:
    """The inverse of :func:`format_value`: an int stays an int."""
    if text == "":
        return math.nan
    try:
        return int(text)
    except ValueError:
        return float(text)


class ExperimentDir:
    """An experiment folder: its config, data snapshot, runs and derived files."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        config_path = self.root / CONFIG_FILE
        meta_path = self.root / META_FILE
        if not config_path.is_file() or not meta_path.is_file():
            raise InputError(
                f"{self.root} is not an experiment folder (no {CONFIG_FILE} and {META_FILE}); "
                "start one with `active-labeling experiment run CONFIG --out DIR`"
            )
        self.config: ExperimentConfig = parse_config(
            config_path.read_text(encoding="utf-8"), source=str(config_path)
        )
        try:
            self.meta: dict = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{meta_path}: not valid JSON: {exc}") from None
        if self.meta.get("format") not in (1, FORMAT):
            raise InputError(f"{meta_path}: unknown format {self.meta.get('format')!r}")
        if (
            self.meta["format"] == 1
            and "strategy_features" not in self.config.model.model_fields_set
        ):
            # Format 1 gave distance strategies the features as loaded; keep that, so a
            # resume or a replay of an older experiment goes on as it started.
            model = self.config.model.model_copy(update={"strategy_features": "input"})
            self.config = self.config.model_copy(update={"model": model})
        self._data: ExperimentData | None = None

    @classmethod
    def create(
        cls, root: Path | str, config: ExperimentConfig, data_digest: str, measures: list[str]
    ) -> ExperimentDir:
        """Write ``config.toml`` and ``experiment.json`` (the snapshot is already there)."""
        root = Path(root)
        meta = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data_sha256": data_digest,
            "measures": measures,
        }
        atomic_write_text(root / CONFIG_FILE, config.to_toml())
        atomic_write_text(root / META_FILE, json.dumps(meta, indent=2) + "\n")
        return cls(root)

    @property
    def measures(self) -> list[str]:
        """The measures logged at every iteration, in column order."""
        return list(self.meta["measures"])

    @property
    def data_path(self) -> Path:
        return self.root / DATA_FILE

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    def data(self) -> ExperimentData:
        """The snapshot, checked against the digest recorded at creation."""
        if self._data is None:
            if not self.data_path.is_file():
                raise InputError(f"{self.data_path}: the data snapshot is missing")
            if file_digest(self.data_path) != self.meta["data_sha256"]:
                raise InputError(
                    f"{self.data_path}: the data snapshot changed since the experiment began"
                )
            self._data = read_snapshot(self.data_path)
        return self._data

    def run_keys(self) -> list[RunKey]:
        """Every run of the experiment, strategy by strategy, in config order."""
        return [
            RunKey(spec.key, seed, half)
            for spec in self.config.strategies
            for seed in self.config.seed_list
            for half in self.config.test.halves
        ]

    def run_files(self, key: RunKey) -> RunFiles:
        return RunFiles(self.root / "runs" / key.strategy / key.name, self.measures)

    @property
    def n_iterations(self) -> int:
        """Iterations of a complete run: the initial fit, then one per batch."""
        return len(self.config.batch_sizes) + 1


class RunFiles:
    """The two files of one run, read and written whole."""

    def __init__(self, folder: Path, measures: list[str]):
        self.folder = folder
        self.measures = measures
        self.selected_path = folder / SELECTED_FILE
        self.metrics_path = folder / METRICS_FILE

    # -- selected.csv ------------------------------------------------------------------------
    def read_selected(self) -> pd.DataFrame:
        """The labeled rows so far (columns iteration, position, row_id, label)."""
        if not self.selected_path.is_file():
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SELECTED_COLUMNS}).astype(
                {"iteration": np.int64, "position": np.int64}
            )
        with open(self.selected_path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or rows[0] != SELECTED_COLUMNS:
            raise InputError(
                f"{self.selected_path}: the header must be {','.join(SELECTED_COLUMNS)}"
            )
        records = []
        for line, row in enumerate(rows[1:], start=2):
            try:
                iteration, position, row_id, label = row
                records.append((int(iteration), int(position), row_id, label))
            except ValueError:
                raise InputError(f"{self.selected_path}: line {line} is malformed: {row}") from None
        frame = pd.DataFrame(records, columns=SELECTED_COLUMNS)
        return frame.astype({"iteration": np.int64, "position": np.int64})

    def write_selected(self, frame: pd.DataFrame) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(SELECTED_COLUMNS)
        for iteration, position, row_id, label in frame[SELECTED_COLUMNS].itertuples(index=False):
            writer.writerow([int(iteration), int(position), row_id, label])
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.selected_path, buffer.getvalue())

    # -- metrics.csv -------------------------------------------------------------------------
    @property
    def metric_columns(self) -> list[str]:
        return ["iteration", *self.measures]

    def read_metrics(self) -> list[dict]:
        """One dict per logged iteration, in order."""
        if not self.metrics_path.is_file():
            return []
        with open(self.metrics_path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows or rows[0] != self.metric_columns:
            raise InputError(
                f"{self.metrics_path}: the header must be {','.join(self.metric_columns)}"
            )
        records = []
        for line, row in enumerate(rows[1:], start=2):
            try:
                if len(row) != len(self.metric_columns):
                    raise ValueError
                record = {"iteration": int(row[0])}
                record.update(
                    (m, parse_value(v)) for m, v in zip(self.measures, row[1:], strict=True)
                )
            except ValueError:
                raise InputError(f"{self.metrics_path}: line {line} is malformed: {row}") from None
            records.append(record)
        return records

    def write_metrics(self, records: list[dict]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.metric_columns)
        for record in records:
            writer.writerow([format_value(record[c]) for c in self.metric_columns])
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.metrics_path, buffer.getvalue())

    def write_auto(self, rows: list[tuple[int, str, str, str]]) -> None:
        """The choices of an ``auto`` run: iteration, strategy, action, reasons."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["iteration", "strategy", "action", "reasons"])
        writer.writerows(rows)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / AUTO_FILE, buffer.getvalue())

    def remove_temporaries(self) -> None:
        """Temporary files left by a process killed while writing."""
        if self.folder.is_dir():
            for leftover in self.folder.glob(".*.tmp-*"):
                leftover.unlink(missing_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for this process; a second writer gets ``RunBusyError``.

        An advisory ``flock`` on ``.lock``: the system releases it when the process dies,
        so a killed run never leaves a stale lock.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not on POSIX: no lock
            yield
            return
        with open(self.folder / ".lock", "a+") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusyError(
                    f"{self.folder} is being written by another process (a worker of a "
                    "killed run, or another resume); wait for it or stop it, then resume"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# -- results across runs ----------------------------------------------------------------------


def load_iterations(experiment: ExperimentDir, *, complete_only: bool = False) -> pd.DataFrame:
    """Every logged iteration of every run: strategy, seed, half, iteration, measures."""
    frames = []
    total = experiment.n_iterations
    for key in experiment.run_keys():
        records = experiment.run_files(key).read_metrics()
        if not records or (complete_only and len(records) < total):
            continue
        frame = pd.DataFrame.from_records(records)
        frame.insert(0, "half", -1 if key.half is None else key.half)
        frame.insert(0, "seed", key.seed)
        frame.insert(0, "strategy", key.strategy)
        frames.append(frame)
    columns = ["strategy", "seed", "half", "iteration", *experiment.measures]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


#: The test scores whose final value a run summary keeps (those the experiment logged).
FINAL_SCORES = ("accuracy", "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy")


def run_summaries(experiment: ExperimentDir, iterations: pd.DataFrame) -> pd.DataFrame:
    """One row per run: iterations logged, whether complete, AUCs and final values.

    ``auc_trapezoid``: the area under the accuracy curve over the labels, divided by their
    range, in percent (``simulation.normalized_auc``). ``auc_mean_accuracy``: the mean of
    the test accuracies of the iterations, times 100, as the tutorial's Table 1 defines it.
    The two agree when the batches are all the same size, but for the two end points,
    which the trapezoid weighs by half. For multi-label experiments both follow the
    micro-averaged F1 instead of the accuracy (``measures.quality_measure``). The final
    value of each test score logged is ``final_<score>``.
    """
    from active_labeling.experiment.measures import quality_measure
    from active_labeling.experiment.simulation import normalized_auc

    quality = quality_measure(experiment.measures)
    rows = []
    total = experiment.n_iterations
    for (strategy, seed, half), run in iterations.groupby(["strategy", "seed", "half"], sort=False):
        run = run.sort_values("iteration")
        row = {
            "strategy": strategy,
            "seed": int(seed),
            "half": int(half),
            "iterations": len(run),
            "complete": len(run) == total,
            "auc_trapezoid": normalized_auc(run["n_labeled"], run[quality]),
            "auc_mean_accuracy": float(100 * run[quality].mean()),
            "final_n_labeled": int(run["n_labeled"].iloc[-1]),
        }
        for score in FINAL_SCORES:
            if score in run:
                row[f"final_{score}"] = float(run[score].iloc[-1])
        if "noisy_ratio" in run:
            row["final_noisy_ratio"] = float(run["noisy_ratio"].iloc[-1])
        rows.append(row)
    return pd.DataFrame(rows)


def load_selections(experiment: ExperimentDir) -> pd.DataFrame:
    frames = []
    for key in experiment.run_keys():
        frame = experiment.run_files(key).read_selected()
        if frame.empty:
            continue
        frame.insert(0, "half", -1 if key.half is None else key.half)
        frame.insert(0, "seed", key.seed)
        frame.insert(0, "strategy", key.strategy)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["strategy", "seed", "half", *SELECTED_COLUMNS])
    return pd.concat(frames, ignore_index=True)


def write_log(experiment: ExperimentDir) -> Path:
    """Rebuild ``log.duckdb`` from the run files (tables iterations, selections, runs).

    Built in a temporary file and renamed, so a reader never sees half a log.
    """
    import duckdb

    iterations = load_iterations(experiment)
    runs = run_summaries(experiment, iterations)
    selections = load_selections(experiment)
    path = experiment.log_path
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.unlink(missing_ok=True)
    try:
        with duckdb.connect(str(temporary)) as con:
            for name, frame in (
                ("iterations", iterations),
                ("runs", runs),
                ("selections", selections),
            ):
                con.register("frame", frame)
                con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
                con.unregister("frame")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
        Path(f"{temporary}.wal").unlink(missing_ok=True)
    return path
