"""The stopping advice measured against the truth: 11 data sets, 4 strategies, 20 seeds.

Two phases, both resumable:

``run``        simulate the loop with every monitoring signal logged (the strategy study's 9
               real data sets plus the two synthetic noisy-blob tasks; random, margin,
               wkmeans and kcenter; a budget of up to 300 labels) into one experiment
               folder per data set under ``bench/.cache/advice/runs/``;
``auto``       the same runs for ``strategy = "auto"`` and for the strategy advice followed
               from each fixed strategy, into ``bench/.cache/advice/auto/`` (paired by seed);
``calibrate``  replay every candidate policy (each stopping rule over a grid of its
               parameters, and combinations) over the logged runs, choose the default by
               leave-one-data-set-out, and write ``docs/advice-study.md`` and the calibration
               file the dashboard reads (``metrics/advice_calibration.json``);
``strategies`` compare ``auto`` and the advice-following runs with the fixed strategies
               (AUC, paired Wilcoxon tests) in the same document.

``python bench/advice_study.py`` runs both (``--help`` for options); the data sets need the
bench extra (statsmodels, vega_datasets) and palmerpenguins.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from strategy_study import DATASETS, write_dataset  # noqa: E402

CACHE = ROOT / "bench" / ".cache" / "advice"
STRATEGIES = ("random", "margin", "wkmeans", "kcenter")
#: Run beside the fixed strategies, paired by seed (same split, start and model seeds):
#: ``auto`` from margin, its default, and the strategy advice followed from each fixed one.
AUTO = tuple(("auto" if start == "margin" else f"auto_from_{start}", start) for start in STRATEGIES)
#: The signals of the strategy advice each variant follows (its folder under the cache).
AUTO_VARIANTS = {
    "auto": ("easier", "explore", "harder"),
    "auto_without_explore": ("easier", "harder"),
}
SYNTHETIC = ("noisy_blobs_ld", "noisy_blobs_hd")
BUDGET = 300


def study_config(
    name: str, seeds: int, path: Path | None = None, frame=None, auto: str | None = None
) -> str:
    """The experiment file of one data set: the budget and batch scale with the pool."""
    if auto:
        signals = ", ".join(f'"{s}"' for s in AUTO_VARIANTS[auto])
        strategies = ", ".join(
            f'{{ name = "auto", label = "{label}", '
            f'params = {{ start = "{start}", signals = [{signals}] }} }}'
            for label, start in AUTO
        )
    else:
        strategies = ", ".join(f'"{s}"' for s in STRATEGIES)
    if name in SYNTHETIC:
        n, k = 10_000, 10
        data = f'[data]\ngenerator = "{name}"\nrandom_state = 0\n'
    else:
        n, k = len(frame), frame["label"].nunique()
        data = f'[data]\nfile = "{path}"\nlabel = "label"\n'
    pool = n // 2
    initial = max(2 * k, 6)
    batch = 5 if n < 1000 else 10
    budget = min(BUDGET, int(0.8 * pool))
    title = "strategy advice followed" if auto else f"stopping advice, {len(STRATEGIES)} strategies"
    return f"""name = "{name}: {title}, {seeds} seeds"
strategies = [{strategies}]
initial = {{ size = {initial}, method = "stratified" }}
batch_size = {batch}
budget = {budget}
seeds = {seeds}
test = 0.5
monitoring = {{ enabled = true, contradiction_sample = 1000, holdout_size = 100 }}

{data}
[model]
name = "logistic_regression"
standardize = true
"""


def run_dataset(name: str, cache: Path, seeds: int, jobs: int, auto: str | None = None) -> Path:
    from active_labeling.experiment import create_experiment, run_experiment

    out = cache / (auto or "runs") / name
    if not out.exists():
        path = frame = None
        if name not in SYNTHETIC:
            path, frame = write_dataset(name, cache)
        config = cache / "configs" / f"{name}{'-' + auto if auto else ''}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(study_config(name, seeds, path, frame, auto), encoding="utf-8")
        create_experiment(config, out)
    run_experiment(out, n_jobs=jobs)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "phase", nargs="?", choices=["run", "auto", "calibrate", "strategies", "all"], default="all"
    )
    names = [*DATASETS, *SYNTHETIC]
    parser.add_argument("--datasets", nargs="+", default=names, choices=names)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the runs are kept")
    args = parser.parse_args(argv)
    if args.phase in ("run", "all"):
        start, load = time.perf_counter(), os.getloadavg()[0]
        for name in args.datasets:
            print(f"{name}:", file=sys.stderr)
            run_dataset(name, args.cache, args.seeds, args.jobs)
        minutes = (time.perf_counter() - start) / 60
        print(
            f"ran {len(args.datasets)} data sets in {minutes:.1f} min (load {load:.1f} at the "
            f"start, {os.getloadavg()[0]:.1f} at the end)",
            file=sys.stderr,
        )
    if args.phase in ("auto", "all"):
        start = time.perf_counter()
        for variant in AUTO_VARIANTS:
            for name in args.datasets:
                print(f"{name} ({variant}):", file=sys.stderr)
                run_dataset(name, args.cache, args.seeds, args.jobs, auto=variant)
        print(f"auto runs in {(time.perf_counter() - start) / 60:.1f} min", file=sys.stderr)
    if args.phase in ("calibrate", "all"):
        from advice_calibration import calibrate

        calibrate([args.cache / "runs" / name for name in args.datasets])
    if args.phase in ("strategies", "all"):
        from advice_calibration import compare_strategies

        compare_strategies(args.cache, args.datasets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
