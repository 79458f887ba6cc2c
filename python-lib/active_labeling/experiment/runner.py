"""Run an experiment: every (strategy, seed) run, on both cores, resumable after a kill.

``create_experiment`` validates the config, snapshots the data and writes the experiment
folder; ``run_experiment`` runs what is missing (so it also resumes); ``replay_experiment``
recomputes measures from the cached selections, querying no strategy. A run is the loop

    iteration 0: label the initial sample, fit the model, measure;
    iteration i: the strategy, given the model of iteration i - 1, picks a batch among the
                 unlabeled pool rows; the oracle labels it; fit the model; measure.

and writes its selection and its measures after every iteration (see ``experiment.cache``).
Every random draw comes from ``experiment.streams``, keyed by seed, strategy and iteration,
and BLAS runs on one thread inside a run, so a run gives the same numbers whether it runs
alone, in a worker, or resumed from its cache. This module never plots nor prints but
through the progress bar.
"""

from __future__ import annotations

import inspect
import math
import os
import shutil
import sys
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from active_labeling.errors import InputError
from active_labeling.experiment import streams
from active_labeling.experiment.cache import (
    ExperimentDir,
    RunFiles,
    RunKey,
    atomic_write_text,
    load_iterations,
    write_log,
)
from active_labeling.experiment.config import ExperimentConfig, known_strategies, load_config
from active_labeling.experiment.data import ExperimentData, load_data, write_snapshot
from active_labeling.experiment.measures import Step, logged_measures, measure, measures_for
from active_labeling.samplers._validation import seed_estimator

# Worker processes start with one BLAS/OpenMP thread: two runs on two cores, not four
# threads fighting over them.
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


# -- creating ---------------------------------------------------------------------------------


def create_experiment(config_path: Path | str, out: Path | str) -> ExperimentDir:
    """Validate the config, load and snapshot the data, and write the experiment folder.

    Raises
    ------
    InputError
        A bad config (the message names the file and field), unreadable data, a budget
        larger than the pool, or an ``out`` folder that is not empty.
    """
    config = load_config(config_path)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            f"{out} already exists and is not empty; resume it with "
            f"`active-labeling experiment resume {out}`, or choose another --out"
        )
    data = load_data(config.data, where=str(config_path))
    _check_sizes(config, data, str(config_path))
    _check_label_kind(config, data, str(config_path))
    out.mkdir(parents=True, exist_ok=True)
    try:
        digest = write_snapshot(data, out / "data.parquet")
        measures = logged_measures(
            noisy=data.noisy is not None,
            label_noise=config.label_noise > 0 or config.labelers is not None,
            monitoring=config.monitoring.enabled,
            labelers=config.labelers is not None,
            holdout=config.monitoring.enabled and config.monitoring.holdout_size > 0,
            multilabel=data.multi_label,
        )
        return ExperimentDir.create(out, config, digest, measures)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


def _check_sizes(config: ExperimentConfig, data: ExperimentData, where: str) -> None:
    n = data.X.shape[0]
    n_pool = n - math.ceil(config.test.fraction * n)  # train_test_split rounds the test up
    n_test = n - n_pool
    if n_pool < config.final_size:
        field = "budget" if config.budget is not None else "n_rounds"
        raise InputError(
            f"{where}: {field}: the runs end with {config.final_size} labeled rows but the "
            f"pool holds {n_pool} of the {n} rows (test fraction {config.test.fraction})"
        )
    if n_test < 1:
        raise InputError(f"{where}: test: the test set would be empty")
    k = data.classes.shape[0]
    if data.multi_label:
        return
    if config.initial.method == "stratified" and config.initial.size < k:
        raise InputError(
            f"{where}: initial.size: a stratified initial sample of {config.initial.size} "
            f"rows cannot hold each of the {k} classes"
        )


def _check_label_kind(config: ExperimentConfig, data: ExperimentData, where: str) -> None:
    """Multi-label data takes the strategies for multi-label models and a random initial
    sample; single-label data refuses the multi-label strategies. One line, naming the
    field."""
    from active_labeling.samplers.registry import STRATEGIES, check_strategy_kind

    for i, spec in enumerate(config.strategies):
        field = f"strategies.{i}.name"
        if spec.name in STRATEGIES:
            try:
                check_strategy_kind(spec.name, data.multi_label, field=field)
            except InputError as exc:
                raise InputError(f"{where}: {exc} (the data is {_kind(data)})") from None
        elif spec.name != "auto" and data.multi_label:
            raise InputError(
                f"{where}: {field}: {spec.name!r} ranks single-label models, and the data is "
                "multi-label"
            )
    if data.multi_label and config.initial.method == "stratified":
        raise InputError(
            f"{where}: initial.method: 'stratified' splits single classes; multi-label data "
            "takes a random initial sample (method = 'random')"
        )


def _kind(data: ExperimentData) -> str:
    return f"multi-label, {len(data.class_names)} classes" if data.multi_label else "single-label"


# -- the per-seed plan --------------------------------------------------------------------------


@dataclass
class SeedPlan:
    """What every strategy of a seed (and half) shares: split, start, oracle, sample."""

    pool: np.ndarray
    test: np.ndarray
    initial: np.ndarray
    revealed: np.ndarray
    monitor: np.ndarray
    holdout: np.ndarray
    team: object | None = None  # experiment.labelers.TeamLabels, with [labelers]


def plan_seed(config: ExperimentConfig, data: ExperimentData, seed: int, half) -> SeedPlan:
    """The split, initial sample, oracle labels and monitoring sample of ``(seed, half)``.

    Examples
    --------
    >>> from active_labeling.experiment.config import parse_config
    >>> from active_labeling.experiment.data import load_data
    >>> config = parse_config('data = {sklearn = "iris"}\\nstrategies = ["random"]\\n'
    ...                       'n_rounds = 2\\ninitial = {size = 6, method = "stratified"}')
    >>> data = load_data(config.data)
    >>> plan = plan_seed(config, data, 0, None)
    >>> plan.pool.shape, plan.test.shape, np.bincount(data.codes[plan.initial]).tolist()
    ((75,), (75,), [2, 2, 2])
    """
    from sklearn.model_selection import train_test_split

    codes = data.codes
    n = codes.shape[0]
    split_seed = streams.int_seed(streams.stream(seed, streams.SPLIT))
    # Label sets are not stratified: their combinations are too many for strata.
    stratify = config.test.stratify and not data.multi_label
    try:
        first, second = train_test_split(
            np.arange(n),
            test_size=config.test.fraction,
            stratify=codes if stratify else None,
            random_state=split_seed,
        )
    except ValueError as exc:
        raise InputError(
            f"test: cannot split the {n} rows by class ({exc}); set test.stratify = false"
        ) from None
    pool, test = (first, second) if half in (None, 0) else (second, first)
    pool, test = np.sort(pool), np.sort(test)
    hk = streams.half_key(half)
    initial = _initial_sample(config, codes, pool, streams.generator(seed, streams.INITIAL, hk))
    revealed = _oracle_labels(config, codes, streams.generator(seed, streams.NOISE, hk))
    team = None
    if config.labelers is not None:  # the team's consensus instead of one oracle
        from active_labeling.experiment.labelers import simulate_team

        team = simulate_team(config.labelers, codes, streams.generator(seed, streams.NOISE, hk))
        revealed = team.revealed
    from active_labeling.metrics import sample_for_contradictions

    monitor = pool[
        sample_for_contradictions(
            pool.shape[0],
            config.monitoring.contradiction_sample,
            random_state=streams.generator(seed, streams.CONTRADICTIONS, hk),
        )
    ]
    # A small labeled holdout, as a team would set aside: drawn from the test rows, so the
    # pool and the labels bought are the same with or without it.
    holdout_rng = streams.generator(seed, streams.HOLDOUT, hk)
    size = min(config.monitoring.holdout_size, test.shape[0])
    holdout = np.sort(holdout_rng.choice(test, size=size, replace=False))
    return SeedPlan(pool, test, np.sort(initial), revealed, monitor, holdout, team)


def _initial_sample(config, codes, pool, rng: np.random.Generator) -> np.ndarray:
    size = config.initial.size
    y_pool = codes[pool]
    if y_pool.ndim == 2:  # label sets: a uniform draw (one-vs-rest takes any set of labels)
        return pool[np.sort(rng.permutation(pool.shape[0])[:size])]
    if config.initial.method == "random":
        from active_labeling.experiment.simulation import initial_sample

        return pool[initial_sample(y_pool, size, rng)]
    # Stratified: size // k per class, the remainder to classes drawn at random; a class
    # with too few pool rows gives all it has and the rest goes to the others.
    classes = np.unique(y_pool)
    members = {c: rng.permutation(np.flatnonzero(y_pool == c)) for c in classes}
    quota = dict.fromkeys(classes, size // classes.shape[0])
    for c in rng.permutation(classes)[: size % classes.shape[0]]:
        quota[c] += 1
    picked = []
    for c in classes:
        picked.extend(members[c][: quota[c]])
    missing = size - len(picked)
    if missing > 0:
        spare = np.concatenate([members[c][quota[c] :] for c in classes])
        picked.extend(rng.permutation(spare)[:missing])
    return pool[np.asarray(picked, dtype=np.intp)]


def _oracle_labels(config, codes, rng: np.random.Generator) -> np.ndarray:
    """The labels the oracle gives: the truth, or with ``label_noise`` another class drawn
    uniformly. Drawn for every row, so that a row's label does not depend on when it is
    asked for."""
    if config.label_noise <= 0:
        return codes
    if codes.ndim == 2:  # label sets: each (row, class) answer flipped on its own
        flip = rng.random(codes.shape) < config.label_noise
        return np.where(flip, 1 - codes, codes)
    k = int(codes.max()) + 1
    flip = rng.random(codes.shape[0]) < config.label_noise
    offset = rng.integers(1, k, size=codes.shape[0])
    return np.where(flip, (codes + offset) % k, codes)


# -- one run ------------------------------------------------------------------------------------


class _Run:
    """One (strategy, seed, half) of an opened experiment."""

    def __init__(self, experiment: ExperimentDir, key: RunKey):
        self.experiment = experiment
        self.config = experiment.config
        self.key = key
        self.data = experiment.data()
        self.X = self.data.X
        self.y_true = self.data.codes
        self.plan = plan_seed(self.config, self.data, key.seed, key.half)
        self.hk = streams.half_key(key.half)
        self.spec = next(s for s in self.config.strategies if s.key == key.strategy)
        self.files: RunFiles = experiment.run_files(key)
        self._oracle = None

    def fit(self, iteration: int, labeled: np.ndarray):
        from active_labeling.models.multilabel import fit_quietly

        model = self.config.model.build(multilabel=self.data.multi_label)
        seed_estimator(model, streams.generator(self.key.seed, streams.MODEL, self.hk, iteration))
        return fit_quietly(model, self.X[labeled], self.plan.revealed[labeled])

    def step(self, iteration, labeled, model, batch, previous_labeled, previous_model) -> Step:
        return Step(
            iteration=iteration,
            X=self.X,
            y_true=self.y_true,
            y_revealed=self.plan.revealed,
            test=self.plan.test,
            monitor=self.plan.monitor,
            labeled=labeled,
            model=model,
            batch=batch,
            previous_labeled=previous_labeled,
            previous_model=previous_model,
            noisy=self.data.noisy,
            holdout=self.plan.holdout,
            team=self.plan.team,
        )

    def oracle(self):
        """For the oracle-informed strategies: the model fitted on the whole test part."""
        if self._oracle is None:
            from active_labeling.experiment.oracle import fit_oracle

            test = self.plan.test
            seed = streams.int_seed(streams.stream(self.key.seed, streams.ORACLE, self.hk))
            self._oracle = fit_oracle(
                self.config.model.build(), self.X[test], self.y_true[test], random_state=seed
            )
        return self._oracle

    def auto_strategies(self, records: list[dict], iteration: int) -> list:
        """The choices of strategy "auto" for iterations 1 .. ``iteration``.

        The choice of iteration ``i`` reads the measures of iterations ``0 .. i-1`` and the
        earlier choices, so a resumed run makes the same ones again.
        """
        from active_labeling.metrics.advice import SIGNALS, History
        from active_labeling.samplers.auto import AutoStrategy

        auto = AutoStrategy(**self.spec.params)
        names = [m for m in SIGNALS if m in self.experiment.measures]
        choices = []
        for i in range(1, iteration + 1):
            seen = records[:i]
            history = History(
                np.array([r["n_labeled"] for r in seen], dtype=np.float64),
                {m: np.array([r[m] for r in seen], dtype=np.float64) for m in names},
            )
            choices.append(
                auto.choose(
                    history, [c.strategy for c in choices], multilabel=self.data.multi_label
                )
            )
        return choices

    def select(self, iteration: int, labeled: np.ndarray, model, records=()) -> np.ndarray:
        """The batch of ``iteration``: positions of unlabeled pool rows, in pick order."""
        from active_labeling.samplers.registry import (
            STRATEGIES,
            make_sampler,
            multilabel_params,
            needs_classifier,
            strategy_view,
        )

        batch_size = self.config.batch_sizes[iteration - 1]
        seed = streams.int_seed(
            streams.stream(
                self.key.seed,
                streams.SAMPLER,
                self.hk,
                streams.strategy_key(self.key.strategy),
                iteration,
            )
        )
        name, params = self.spec.name, dict(self.spec.params)
        if name == "auto":
            choices = self.auto_strategies(list(records), iteration)
            self.files.write_auto(
                [
                    (i, c.strategy, c.action, " | ".join(c.reasons))
                    for i, c in enumerate(choices, start=1)
                ]
            )
            name, params = choices[-1].strategy, {}
        X = self.X
        if name in STRATEGIES:
            if self.data.multi_label:
                # WKMeans weighs with the mean binary uncertainty (the harness keeps 0.5 as
                # every class's threshold).
                params = multilabel_params(name, params)
            if self.config.model.strategy_features == "model":
                model, X = strategy_view(name, model, X)
            sampler = make_sampler(
                name,
                classifier=model if needs_classifier(name) else None,
                batch_size=batch_size,
                random_state=seed,
                **params,
            )
        else:
            cls = known_strategies()[name]
            accepted = set(inspect.signature(cls).parameters)
            if "random_state" in accepted:
                params["random_state"] = seed
            if "oracle" in accepted:
                params["oracle"] = self.oracle()
            sampler = cls(model, batch_size, prefit=True, **params)
        sampler.fit(X[labeled], self.plan.revealed[labeled])
        unlabeled = np.setdiff1d(self.plan.pool, labeled, assume_unique=True)
        if getattr(sampler, "requires_true_labels", False):
            picks = sampler.select_samples(X[unlabeled], self.y_true[unlabeled])
        else:
            picks = sampler.select_samples(X[unlabeled])
        picks = np.asarray(picks, dtype=np.intp)
        if picks.shape[0] != batch_size or np.unique(picks).shape[0] != batch_size:
            raise InputError(
                f"strategy {self.key.strategy!r} returned {picks.shape[0]} rows "
                f"({np.unique(picks).shape[0]} distinct) for a batch of {batch_size}"
            )
        return unlabeled[picks]

    def selection_rows(self, iteration: int, positions: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "iteration": np.full(positions.shape[0], iteration, dtype=np.int64),
                "position": positions.astype(np.int64),
                "row_id": self.data.row_ids[positions],
                "label": self.data.label_text(self.plan.revealed[positions]),
            }
        )

    def cached_state(self) -> tuple[pd.DataFrame, list[dict]]:
        """The cached selection and measures, cut to the iterations both hold consistently.

        The selection must start with this seed's initial sample, hold batches of the
        configured sizes from pool rows with the oracle's labels; the measures must number
        the iterations 0, 1, 2... Anything after the first disagreement (the tail of a run
        killed between its two writes) is dropped, and the files rewritten to match.
        """
        selected = self.files.read_selected()
        records = self.files.read_metrics()
        consistent = 0
        for i, record in enumerate(records):
            if record["iteration"] != i:
                break
            rows = selected[selected["iteration"] == i]
            expected = self.config.initial.size if i == 0 else self.config.batch_sizes[i - 1]
            if len(rows) != expected:
                break
            positions = rows["position"].to_numpy()
            if i == 0 and not np.array_equal(np.sort(positions), self.plan.initial):
                raise InputError(
                    f"{self.files.selected_path}: the initial sample differs from the one "
                    "this seed draws; the cache belongs to another config or version"
                )
            if not np.isin(positions, self.plan.pool).all():
                raise InputError(f"{self.files.selected_path}: iteration {i} holds a test row")
            labels = self.selection_rows(i, positions)["label"].tolist()
            if labels != rows["label"].tolist():
                raise InputError(
                    f"{self.files.selected_path}: iteration {i}: the labels differ from the "
                    "oracle's"
                )
            consistent = i + 1
        kept = selected[selected["iteration"] < consistent]
        if len(kept) != len(selected) or len(records) != consistent:
            self.files.write_selected(kept)
            self.files.write_metrics(records[:consistent])
        return kept.reset_index(drop=True), records[:consistent]

    def execute(self, on_iteration=None) -> int:
        """Run the missing iterations; returns how many were run."""
        measures = self.experiment.measures
        with self.files.lock():
            self.files.remove_temporaries()
            selected, records = self.cached_state()
            start = len(records)
            total = self.experiment.n_iterations
            model = labeled = None
            if start > 0:
                labeled = np.sort(selected["position"].to_numpy())
                model = self.fit(start - 1, labeled)
            for i in range(start, total):
                if i == 0:
                    batch, previous_labeled = None, None
                    new_labeled = self.plan.initial
                    added = self.selection_rows(0, self.plan.initial)
                else:
                    batch = self.select(i, labeled, model, records)
                    previous_labeled = labeled
                    new_labeled = np.sort(np.concatenate([labeled, batch]))
                    added = self.selection_rows(i, batch)
                selected = pd.concat([selected, added], ignore_index=True)
                self.files.write_selected(selected)
                new_model = self.fit(i, new_labeled)
                step = self.step(i, new_labeled, new_model, batch, previous_labeled, model)
                records.append(measure(step, measures))
                self.files.write_metrics(records)
                model, labeled = new_model, new_labeled
                if on_iteration is not None:
                    on_iteration()
            return total - start

    def replay(self, names: list[str]) -> pd.DataFrame:
        """Recompute ``names`` at every cached iteration from the cached selection."""
        selected = self.files.read_selected()
        records = self.files.read_metrics()
        rows = []
        model = labeled = None
        last = int(selected["iteration"].max()) if len(selected) else -1
        for i in range(last + 1):
            batch_frame = selected[selected["iteration"] == i]
            if batch_frame.empty:
                break
            batch = batch_frame["position"].to_numpy()
            new_labeled = np.sort(selected.loc[selected["iteration"] <= i, "position"].to_numpy())
            new_model = self.fit(i, new_labeled)
            step = self.step(i, new_labeled, new_model, batch if i else None, labeled, model)
            values = measure(step, names)
            logged = records[i] if i < len(records) else {}
            for name in names:
                rows.append(
                    {
                        "strategy": self.key.strategy,
                        "seed": self.key.seed,
                        "half": -1 if self.key.half is None else self.key.half,
                        "iteration": i,
                        "metric": name,
                        "logged": logged.get(name, np.nan),
                        "replayed": values[name],
                    }
                )
            model, labeled = new_model, new_labeled
        return pd.DataFrame(rows)


# -- in a worker --------------------------------------------------------------------------------

_OPENED: dict[str, ExperimentDir] = {}


def _experiment(root: str) -> ExperimentDir:
    """The experiment, opened once per process (its snapshot is read once)."""
    if root not in _OPENED:
        _OPENED[root] = ExperimentDir(root)
    return _OPENED[root]


@contextmanager
def _quiet_single_thread():
    from sklearn.exceptions import ConvergenceWarning

    with threadpool_limits(limits=1), warnings.catch_warnings():
        # Early iterations fit few rows; a model that has not fully converged there is
        # part of the experiment, not a problem to report 20 times per run.
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def execute_run(root: str, key: RunKey) -> tuple[RunKey, int]:
    """Run (or finish) one run; safe to call in a worker process."""
    with _quiet_single_thread():
        return key, _Run(_experiment(root), key).execute()


def replay_run(root: str, key: RunKey, names: list[str]) -> pd.DataFrame:
    with _quiet_single_thread():
        return _Run(_experiment(root), key).replay(names)


@contextmanager
def _single_thread_environment():
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _map_runs(function, keys: list[RunKey], args: tuple, n_jobs: int, progress: bool, desc: str):
    """Apply ``function(root, key, *args)`` to every key, yielding results as they come."""
    bar = tqdm(total=len(keys), desc=desc, unit="run", disable=not progress, file=sys.stderr)
    with bar:
        if n_jobs == 1 or len(keys) <= 1:
            for key in keys:
                bar.set_postfix_str(str(key), refresh=False)
                yield function(*args[:1], key, *args[1:])
                bar.update()
            return
        # "spawn": a fresh interpreter per worker, never a fork of a process holding
        # threads (tqdm's monitor, BLAS pools).
        with (
            _single_thread_environment(),
            ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn")) as pool,
        ):
            futures = [pool.submit(function, *args[:1], key, *args[1:]) for key in keys]
            try:
                for future in as_completed(futures):
                    yield future.result()
                    bar.update()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise


def default_jobs() -> int:
    """Both cores of a two-core machine, every core of a bigger one."""
    return max(1, os.cpu_count() or 1)


def _check_jobs(n_jobs) -> int:
    if n_jobs is None:
        return default_jobs()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise InputError(f"jobs must be a positive int, got {n_jobs!r}")
    return n_jobs


# -- public entry points ------------------------------------------------------------------------


@dataclass
class RunSummary:
    """What ``run_experiment`` did."""

    root: Path
    runs: int
    ran: int
    iterations: int
    log: Path


def run_experiment(
    root: Path | str, *, n_jobs: int | None = None, progress: bool = True
) -> RunSummary:
    """Run every missing iteration of every run of the experiment in ``root``.

    A complete run is left as it is; a partial one (killed) continues from its last
    complete iteration. Then ``log.duckdb`` is rebuilt.

    Parameters
    ----------
    root : path
        An experiment folder made by :func:`create_experiment`.
    n_jobs : int, optional
        Worker processes (default: one per core). Results do not depend on it.
    progress : bool
        Show a progress bar over the runs.
    """
    n_jobs = _check_jobs(n_jobs)
    experiment = ExperimentDir(root)
    total = experiment.n_iterations
    pending = [
        key
        for key in experiment.run_keys()
        if len(experiment.run_files(key).read_metrics()) < total
    ]
    done = 0
    for _, count in _map_runs(
        execute_run, pending, (str(experiment.root),), n_jobs, progress, "runs"
    ):
        done += count
    log = write_log(experiment)
    return RunSummary(experiment.root, len(experiment.run_keys()), len(pending), done, log)


def replay_experiment(
    root: Path | str,
    metrics: Iterable[str] | None = None,
    *,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Recompute measures from the cached selections, without querying any strategy.

    At every cached iteration of every run, the model is refitted on the cached labeled
    rows (with the run's seeds) and ``metrics`` (default: every logged measure) computed
    afresh. Writes ``replay.csv`` in the folder (strategy, seed, half, iteration, metric,
    logged, replayed) and returns it; ``logged`` is NaN for a measure not logged.
    """
    n_jobs = _check_jobs(n_jobs)
    experiment = ExperimentDir(root)
    names = list(metrics) if metrics else experiment.measures
    known = measures_for(experiment.data().multi_label)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"unknown metric {unknown[0]!r}; choose one of {', '.join(known)}")
    if "noisy_ratio" in names and experiment.data().noisy is None:
        raise InputError("metric 'noisy_ratio' needs data that marks noisy rows")
    keys = [k for k in experiment.run_keys() if experiment.run_files(k).read_metrics()]
    frames = list(
        _map_runs(replay_run, keys, (str(experiment.root), names), n_jobs, progress, "replay")
    )
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(
            columns=["strategy", "seed", "half", "iteration", "metric", "logged", "replayed"]
        )
    )
    frame = frame.sort_values(["strategy", "seed", "half", "iteration"], kind="stable")
    frame = frame.reset_index(drop=True)
    atomic_write_text(experiment.root / "replay.csv", frame.to_csv(index=False))
    return frame


def experiment_results(root: Path | str) -> pd.DataFrame:
    """Every logged iteration of every run (see ``cache.load_iterations``)."""
    return load_iterations(ExperimentDir(root))
