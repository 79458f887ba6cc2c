"""Every multi-label strategy against random on 4 multi-label data sets, 20 seeds, paired tests.

The data sets: three drawn by scikit-learn's ``make_multilabel_classification`` (synthetic:
items are bags of words from their classes' word distributions) with different settings,
and yeast (2,417 genes, 103 features, 14 functional classes; Elisseeff and Weston 2002), the
copy that ships inside the ``river`` package (no download at run time). Each runs through
the experiment harness (one folder per data set under ``bench/.cache/multilabel-study/``,
so a rerun resumes), and the results go to ``docs/multilabel-study.md``: the AUC over the
micro-F1 curve with intervals, the final scores, and every strategy against random with the
paired Wilcoxon test of ``experiment.report.paired_comparison``.

Run it with ``python bench/multilabel_study.py`` (``--help`` for options; ``--quick`` for a
smoke run of 2 seeds and 3 batches); yeast needs the bench extra (``river``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "bench" / ".cache" / "multilabel-study"
DOC = ROOT / "docs" / "multilabel-study.md"
BASELINE = "random"
STRATEGIES = (
    "random",
    "mean_binary_uncertainty",
    "max_binary_uncertainty",
    "mmc",
    "label_cardinality",
    "kcenter",
    "wkmeans",
    "badge",
)

#: Synthetic data sets: make_multilabel_classification's parameters and seed.
SYNTHETIC = {
    "synthetic_5": (
        "5 classes, 2 per item on average",
        {"n_samples": 2000, "n_features": 20, "n_classes": 5, "n_labels": 2},
        0,
    ),
    "synthetic_10": (
        "10 classes, 3 per item, 40 features",
        {"n_samples": 2000, "n_features": 40, "n_classes": 10, "n_labels": 3},
        0,
    ),
    "synthetic_sparse": (
        "8 classes, 1 per item, some items with none",
        {
            "n_samples": 2000,
            "n_features": 20,
            "n_classes": 8,
            "n_labels": 1,
            "allow_unlabeled": True,
        },
        2,
    ),
}
DATASETS = (*SYNTHETIC, "yeast")


def yeast_file(cache: Path) -> Path:
    """River's bundled yeast.csv.gz as Parquet (the harness reads .csv and .parquet)."""
    import river.datasets

    source = Path(river.datasets.__file__).parent / "yeast.csv.gz"
    path = cache / "data" / "yeast.parquet"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        pd.read_csv(source).to_parquet(temporary, index=False)
        os.replace(temporary, path)
    return path


def study_config(name: str, cache: Path, seeds: int, rounds: int, batch: int) -> str:
    strategies = ", ".join(f'"{s}"' for s in STRATEGIES)
    head = f"""name = "{name}: multi-label strategies, {seeds} seeds"
strategies = [{strategies}]
initial = 20
batch_size = {batch}
n_rounds = {rounds}
seeds = {seeds}
test = 0.5
monitoring = {{ enabled = false }}

[model]
name = "logistic_regression"
standardize = true
multi_label_method = "one_vs_rest"

[data]
"""
    if name == "yeast":
        labels = ", ".join(f'"Class{i}"' for i in range(1, 15))
        return head + f'file = "{yeast_file(cache)}"\nlabels = [{labels}]\n'
    _, params, seed = SYNTHETIC[name]
    inline = ", ".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in params.items()
    )
    return head + f'generator = "multilabel"\nrandom_state = {seed}\nparams = {{ {inline} }}\n'


def run_dataset(name: str, cache: Path, seeds: int, rounds: int, batch: int, jobs: int) -> Path:
    from active_labeling.experiment import create_experiment, run_experiment

    out = cache / "runs" / name
    if not out.exists():
        config = cache / "configs" / f"{name}.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(study_config(name, cache, seeds, rounds, batch), encoding="utf-8")
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
    aucs = auc_table(runs).set_index("strategy")
    finals = runs.groupby("strategy")[
        ["final_micro_f1", "final_macro_f1", "final_hamming_loss", "final_subset_accuracy"]
    ].mean()
    return {
        "name": name,
        "source": "river (yeast, Elisseeff and Weston 2002)"
        if name == "yeast"
        else f"make_multilabel_classification: {SYNTHETIC[name][0]} (synthetic)",
        "rows": data.X.shape[0],
        "features": data.X.shape[1],
        "classes": len(data.class_names),
        "cardinality": float(data.y.sum(axis=1).mean()),
        "labels": f"{config.initial.size} + {len(config.batch_sizes)} x {config.batch_size}",
        "aucs": aucs,
        "finals": finals,
        "versus": paired_comparison(runs, BASELINE).set_index("strategy"),
        "runs": len(runs),
    }


def verdict(row) -> str:
    """'win' or 'loss' when the paired Wilcoxon test says so at 5%, else 'tie'."""
    if not row["wilcoxon_p"] < 0.05:
        return "tie"
    return "win" if row["mean_difference"] > 0 else "loss"


def _p(value: float) -> str:
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def write_doc(results: list[dict], seconds: float, loads: tuple, seeds: int) -> None:
    lines = [
        "# Multi-label study: the multi-label strategies against random",
        "",
        "Written by `bench/multilabel_study.py` (`python bench/multilabel_study.py`); the runs",
        "are cached under `bench/.cache/multilabel-study/`, one experiment folder per data set,",
        "so a rerun resumes, and `active-labeling experiment report",
        "bench/.cache/multilabel-study/runs/NAME` draws the curves of one data set.",
        "",
        "## Protocol",
        "",
        "- Model: standardized logistic regression, one-vs-rest (one binary model per class),",
        "  a class predicted where its probability reaches 0.5. "
        f"{seeds} seeds per strategy and data set.",
        "- Per seed, half the rows (at random: label sets are not stratified) are held out to",
        "  measure the test scores; the other half is the pool. 20 initial labels drawn at",
        "  random, then batches of 10 rows.",
        "- The strategies of a seed share the split, the initial labels and the model seeds:",
        "  every comparison is paired by seed.",
        "- AUC: the normalized area under the test micro-F1 curve (trapezoid over the labeled",
        "  rows), in percent; mean over seeds and 95% percentile-bootstrap interval of the mean.",
        "- Against random: the paired AUC difference (points), and a two-sided Wilcoxon",
        f"  signed-rank test over the {seeds} pairs (`experiment.report.paired_comparison`):",
        "  W (significant win at 5%), L (significant loss) or = (no significant difference).",
        "- Strategies: `mean_binary_uncertainty` and `max_binary_uncertainty` (the mean and the",
        "  largest `1 - |2p - 1|` over the classes), `mmc` (Yang et al. 2009), `label_cardinality`",
        "  (Li and Guo 2013), `kcenter`, `wkmeans` (weighted by the mean binary uncertainty,",
        "  beta = 10) and `badge` (gradients of the sigmoids at the predicted labels); distance",
        "  strategies measure in the model's standardized feature space.",
        "",
        f"Run time: {seconds / 60:.1f} minutes on 2 cores (load average "
        f"{loads[0]:.1f} at the start and {loads[1]:.1f} at the end, 1 minute). "
        f"{len(STRATEGIES)} strategies x {len(results)} data sets x {seeds} seeds = "
        f"{len(STRATEGIES) * len(results) * seeds:,} runs.",
        "",
        "## Data sets",
        "",
        "Three are synthetic (scikit-learn's generator, which draws each item's classes, then "
        "its words from them), one is real.",
        "",
        "| data set | source | rows | features | classes | classes per item "
        "| labels (initial + batches) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['name']} | {r['source']} | {r['rows']} | {r['features']} | {r['classes']} "
            f"| {r['cardinality']:.2f} | {r['labels']} |"
        )
    lines += [
        "",
        "## AUC over micro-F1 (%), mean [95% interval] over seeds",
        "",
        "| strategy | " + " | ".join(r["name"] for r in results) + " | mean rank |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    ranks = pd.DataFrame(
        {r["name"]: r["aucs"]["auc_trapezoid"].rank(ascending=False) for r in results}
    )
    for s in STRATEGIES:
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
    lines += [
        f"## Against {BASELINE}: mean AUC difference (points), Wilcoxon p, verdict",
        "",
        "| strategy | " + " | ".join(r["name"] for r in results) + " | W / = / L |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    for s in STRATEGIES:
        if s == BASELINE:
            continue
        cells, counts = [], {"win": 0, "tie": 0, "loss": 0}
        for r in results:
            row = r["versus"].loc[s]
            v = verdict(row)
            counts[v] += 1
            mark = {"win": "W", "tie": "=", "loss": "L"}[v]
            cells.append(
                f"{row['mean_difference']:+.2f} (p {_p(row['wilcoxon_p'])}, "
                f"{int(row['wins'])}/{int(row['pairs'])} seeds) {mark}"
            )
        lines.append(
            f"| {s} | "
            + " | ".join(cells)
            + f" | {counts['win']} / {counts['tie']} / {counts['loss']} |"
        )
    lines += [
        "",
        "Each cell: the mean paired difference of AUC with random, the Wilcoxon p-value, the "
        "seeds where the strategy beat random, and the verdict.",
        "",
        "## Final scores (at the last batch), mean over seeds",
        "",
        "| strategy | "
        + " | ".join(f"{r['name']}: micro F1 / Hamming / subset acc." for r in results)
        + " |",
        "|---|" + "---|" * len(results),
    ]
    for s in STRATEGIES:
        cells = []
        for r in results:
            f = r["finals"].loc[s]
            cells.append(
                f"{f['final_micro_f1']:.3f} / {f['final_hamming_loss']:.3f} / "
                f"{f['final_subset_accuracy']:.3f}"
            )
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
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
    parser.add_argument("--rounds", type=int, default=15, help="batches")
    parser.add_argument("--batch", type=int, default=10, help="rows per batch")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the runs are kept")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 3 batches, no doc")
    parser.add_argument("--no-doc", action="store_true", help="run only, leave the doc as is")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.rounds, args.no_doc = 2, 3, True
        args.cache = args.cache.with_name(args.cache.name + "-quick")
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    results = []
    for name in args.datasets:
        print(f"{name}:", file=sys.stderr)
        out = run_dataset(name, args.cache, args.seeds, args.rounds, args.batch, args.jobs)
        results.append(summarize(name, out))
    seconds = time.perf_counter() - start
    print(f"{len(results)} data sets in {seconds / 60:.1f} min", file=sys.stderr)
    if not args.no_doc:
        write_doc(results, seconds, (load_start, os.getloadavg()[0]), args.seeds)
        print(f"wrote {DOC}", file=sys.stderr)
    else:
        for r in results:
            print(r["name"], r["aucs"]["auc_trapezoid"].round(1).to_dict(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
