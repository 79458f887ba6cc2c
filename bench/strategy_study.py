"""Every query strategy of the library on 9 real tabular data sets, 20 seeds, logistic regression.

The data sets ship inside registry packages (no download at run time): scikit-learn's iris,
wine, breast_cancer and digits; palmerpenguins' penguins; statsmodels' fair (affairs) and
anes96 (1996 US vote); vega_datasets' cars (origin) and seattle-weather. Each is written as a
CSV with a ``label`` column, then run through the experiment harness as a ``file`` source
(one experiment folder per data set under ``bench/.cache/study/``, so a rerun resumes), and
the results are written to ``docs/strategy-study.md``: the AUC table with intervals, and
the wins and losses of every strategy against random and against margin.

Run it with ``python bench/strategy_study.py`` (``--help`` for options); it needs the bench
extra (statsmodels, vega_datasets) and palmerpenguins.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "study"
DOC = ROOT / "docs" / "strategy-study.md"
BASELINES = ("random", "margin")


# -- the data sets ------------------------------------------------------------------------------


def _sklearn(name: str) -> pd.DataFrame:
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.data.copy()
    frame["label"] = bunch.target.astype(int)
    return frame


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["species"])
    frame = frame.drop(columns=["year"]).rename(columns={"species": "label"})
    return frame  # island and sex are categorical; a few missing values are imputed


def _fair() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.fair.load_pandas().data
    frame["label"] = np.where(frame.pop("affairs") > 0, "affair", "none")
    return frame


def _anes96() -> pd.DataFrame:
    import statsmodels.api as sm

    frame = sm.datasets.anes96.load_pandas().data.drop(columns=["logpopul"])
    frame["label"] = np.where(frame.pop("vote") > 0, "Dole", "Clinton")
    return frame


def _cars() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.cars().drop(columns=["Name"])
    frame["Year"] = pd.to_datetime(frame["Year"]).dt.year
    return frame.rename(columns={"Origin": "label"})


def _weather() -> pd.DataFrame:
    from vega_datasets import local_data

    frame = local_data.seattle_weather()
    frame["month"] = pd.to_datetime(frame.pop("date")).dt.month
    return frame.rename(columns={"weather": "label"})


DATASETS = {
    "iris": ("scikit-learn", lambda: _sklearn("iris")),
    "wine": ("scikit-learn", lambda: _sklearn("wine")),
    "breast_cancer": ("scikit-learn", lambda: _sklearn("breast_cancer")),
    "digits": ("scikit-learn", lambda: _sklearn("digits")),
    "penguins": ("palmerpenguins", _penguins),
    "fair": ("statsmodels", _fair),
    "anes96": ("statsmodels", _anes96),
    "cars": ("vega_datasets", _cars),
    "seattle_weather": ("vega_datasets", _weather),
}


def write_dataset(name: str, cache: Path) -> tuple[Path, pd.DataFrame]:
    frame = DATASETS[name][1]()
    path = cache / "data" / f"{name}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temporary, index=False)
    os.replace(temporary, path)
    return path, frame


def study_config(name: str, path: Path, frame: pd.DataFrame, seeds: int, rounds: int) -> str:
    """The experiment file of one data set: sizes scale with the pool and the classes."""
    from active_labeling.samplers.registry import STRATEGIES

    n, k = len(frame), frame["label"].nunique()
    pool = n // 2
    initial = max(2 * k, 6)
    batch = 5 if n < 1000 else 10
    n_rounds = max(2, min(rounds, (int(0.8 * pool) - initial) // batch))
    strategies = ", ".join(f'"{s}"' for s in STRATEGIES)
    return f"""name = "{name}: every strategy, {seeds} seeds"
strategies = [{strategies}]
initial = {{ size = {initial}, method = "stratified" }}
batch_size = {batch}
n_rounds = {n_rounds}
seeds = {seeds}
test = 0.5
monitoring = {{ enabled = false }}

[data]
file = "{path}"
label = "label"

[model]
name = "logistic_regression"
standardize = true
"""


# -- running and summarizing ----------------------------------------------------------------------


def run_dataset(name: str, cache: Path, seeds: int, rounds: int, jobs: int) -> Path:
    from active_labeling.experiment import create_experiment, run_experiment

    out = cache / "runs" / name
    if not out.exists():
        path, frame = write_dataset(name, cache)
        config = cache / "configs" / f"{name}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(study_config(name, path, frame, seeds, rounds), encoding="utf-8")
        create_experiment(config, out)
    run_experiment(out, n_jobs=jobs)
    return out


def summarize(name: str, out: Path) -> dict:
    from active_labeling.experiment.cache import ExperimentDir, load_iterations, run_summaries
    from active_labeling.experiment.report import auc_table, paired_comparison

    experiment = ExperimentDir(out)
    runs = run_summaries(experiment, load_iterations(experiment, complete_only=True))
    config = experiment.config
    data = experiment.data()
    return {
        "name": name,
        "source": DATASETS[name][0],
        "rows": data.X.shape[0],
        "features": data.X.shape[1],
        "classes": int(data.classes.shape[0]),
        "labels": f"{config.initial.size} + {len(config.batch_sizes)} x {config.batch_size}",
        "aucs": auc_table(runs).set_index("strategy"),
        "versus": {b: paired_comparison(runs, b).set_index("strategy") for b in BASELINES},
    }


def verdict(row) -> str:
    """'win' or 'loss' when the paired Wilcoxon test says so at 5%, else 'tie'."""
    if not row["wilcoxon_p"] < 0.05:
        return "tie"
    return "win" if row["mean_difference"] > 0 else "loss"


def write_doc(results: list[dict], seconds: float, loads: tuple, seeds: int) -> None:
    strategies = list(results[0]["aucs"].index)
    lines = [
        "# Strategy study: every query strategy on 9 real tabular data sets",
        "",
        "Written by `bench/strategy_study.py` (`python bench/strategy_study.py`); the runs are",
        "cached under `bench/.cache/study/`, one experiment folder per data set, so a rerun",
        "resumes and `active-labeling experiment report bench/.cache/study/runs/NAME` draws the",
        "curves of one data set.",
        "",
        "## Protocol",
        "",
        f"- Model: standardized logistic regression. {seeds} seeds per strategy and data set.",
        "- Per seed, half the rows (stratified) are held out to measure the test accuracy; the",
        "  other half is the pool. The initial labels are stratified, 2 per class (at least 6);",
        "  batches of 5 rows (10 on data sets of 1,000 rows or more), up to 15 batches.",
        "- The strategies of a seed share the split, the initial labels and the model seeds:",
        "  every comparison is paired by seed.",
        "- AUC: the normalized area under the test-accuracy curve (trapezoid over the labeled",
        "  rows), in percent; mean over seeds and 95% percentile-bootstrap interval of the mean.",
        "- Win / loss: a two-sided Wilcoxon signed-rank test over the 20 paired AUC differences",
        "  at 5%, in the direction of the mean difference; otherwise a tie.",
        "- Strategy parameters are the library's defaults (`committee`: its default members,",
        "  `wkmeans`/`iwkmeans`: beta = 10, and so on).",
        "- Distance strategies (k-center, the k-means family, BADGE, TypiClust) measure",
        "  distances in the model's feature space, after its standardization (fitted on the",
        "  labeled rows), as the query-sampler recipe does (`model.strategy_features`).",
        "",
        f"Run time: {seconds / 60:.1f} minutes on 2 cores (load average "
        f"{loads[0]:.1f} at the start and {loads[1]:.1f} at the end, 1 minute, "
        f"`os.getloadavg()`). {len(strategies)} strategies x {len(results)} data sets x "
        f"{seeds} seeds = {len(strategies) * len(results) * seeds:,} runs.",
        "",
        "## Data sets",
        "",
        "| data set | package | rows | features (encoded) | classes | labels (initial + batches) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['source']} | {r['rows']} | {r['features']} | {r['classes']} "
            f"| {r['labels']} |"
        )
    lines += [
        "",
        "## AUC (%), mean [95% interval] over seeds",
        "",
        "| strategy | " + " | ".join(r["name"] for r in results) + " | mean rank |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    ranks = pd.DataFrame(
        {r["name"]: r["aucs"]["auc_trapezoid"].rank(ascending=False) for r in results}
    )
    for s in strategies:
        cells = []
        for r in results:
            a = r["aucs"].loc[s]
            best = a["auc_trapezoid"] == r["aucs"]["auc_trapezoid"].max()
            value = f"{a['auc_trapezoid']:.1f}"
            cells.append(
                f"{'**' + value + '**' if best else value} "
                f"[{a['auc_trapezoid_low']:.1f}, {a['auc_trapezoid_high']:.1f}]"
            )
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {ranks.loc[s].mean():.1f} |")
    lines += ["", "Bold: the best mean AUC of the data set.", ""]
    for baseline in BASELINES:
        lines += [
            f"## Against {baseline}: wins / ties / losses over the data sets",
            "",
            f"Each cell: the mean AUC difference with {baseline} (points), and W (significant "
            "win), L (significant loss) or = (tie).",
            "",
            "| strategy | " + " | ".join(r["name"] for r in results) + " | W / = / L |",
            "|---|" + "---|" * (len(results) + 1),
        ]
        for s in strategies:
            if s == baseline:
                continue
            cells, counts = [], {"win": 0, "tie": 0, "loss": 0}
            for r in results:
                row = r["versus"][baseline].loc[s]
                v = verdict(row)
                counts[v] += 1
                mark = {"win": "W", "tie": "=", "loss": "L"}[v]
                cells.append(f"{row['mean_difference']:+.1f} {mark}")
            lines.append(
                f"| {s} | "
                + " | ".join(cells)
                + f" | {counts['win']} / {counts['tie']} / {counts['loss']} |"
            )
        lines.append("")
    # The reading of the results is written by hand below the tables; a rerun keeps it.
    reading = ""
    if DOC.is_file():
        previous = DOC.read_text(encoding="utf-8")
        if "\n## Reading\n" in previous:
            reading = previous[previous.index("\n## Reading\n") + 1 :]
    text = "\n".join(lines) + reading
    temporary = DOC.with_name(f".{DOC.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, DOC)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=15, help="batches at most")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the runs are kept")
    parser.add_argument("--no-doc", action="store_true", help="run only, leave the doc as is")
    args = parser.parse_args(argv)
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    results = []
    for name in args.datasets:
        print(f"{name}:", file=sys.stderr)
        out = run_dataset(name, args.cache, args.seeds, args.rounds, args.jobs)
        results.append(summarize(name, out))
    seconds = time.perf_counter() - start
    print(f"{len(results)} data sets in {seconds / 60:.1f} min", file=sys.stderr)
    if not args.no_doc:
        write_doc(results, seconds, (load_start, os.getloadavg()[0]), args.seeds)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
