"""The experiment report: learning curves, AUC table with intervals, paired comparisons.

``write_report(DIR)`` reads the run files of an experiment folder and writes
``DIR/report/``: ``index.html`` (one self-contained page: no script, no external asset,
every string from the data or the config escaped), a PNG per plot, and the tables as CSV
and Markdown. Intervals are 95% percentile bootstraps of the mean over runs, with a
seeded generator, so the same experiment gives the same report. Comparisons with the
baseline strategy are paired by seed (and half): both runs share the split and the initial
labels, so the difference is the strategy's doing. Nothing here runs a strategy or fits a
model.
"""

from __future__ import annotations

import html
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.experiment import streams
from active_labeling.experiment.cache import (
    FINAL_SCORES,
    ExperimentDir,
    atomic_write_text,
    load_iterations,
    run_summaries,
)
from active_labeling.experiment.measures import measures_for, quality_measure

AUCS = {
    "auc_trapezoid": "AUC, trapezoid (%)",
    "auc_mean_accuracy": "AUC, mean accuracy (%)",
}
"""The two AUCs of a run: the normalized area under the accuracy curve (trapezoid rule over
the labels), and the tutorial's Table 1 definition (the mean of the accuracies, x 100)."""

_REPORT_STREAM = 100


def bootstrap_interval(
    values, *, n_boot: int = 2000, level: float = 0.95, random_state=None
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN for fewer than 2).

    Examples
    --------
    >>> low, high = bootstrap_interval([1.0, 2.0, 3.0, 4.0], random_state=0)
    >>> 1.0 <= low < 2.5 < high <= 4.0
    True
    """
    values = np.asarray(values, dtype=float)
    if values.shape[0] < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(random_state)
    means = values[rng.integers(0, values.shape[0], (n_boot, values.shape[0]))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def curve_band(matrix: np.ndarray, *, n_boot: int = 2000, random_state=None):
    """Mean over runs (rows) per iteration (columns), and its 95% bootstrap band.

    NaN entries (a batch measure at iteration 0) are left out of the means.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns give NaN, quietly
        mean = np.nanmean(matrix, axis=0)
        if matrix.shape[0] < 2:
            return mean, mean, mean
        rng = np.random.default_rng(random_state)
        picks = rng.integers(0, matrix.shape[0], (n_boot, matrix.shape[0]))
        means = np.nanmean(matrix[picks], axis=1)
        low, high = np.nanpercentile(means, [2.5, 97.5], axis=0)
    return mean, low, high


def _seed_for(random_state: int, *names: str) -> np.random.SeedSequence:
    # One stream per (strategy, quantity): a report does not change when a strategy is added.
    return streams.stream(random_state, _REPORT_STREAM, *map(streams.strategy_key, names))


def auc_table(runs: pd.DataFrame, *, n_boot: int = 2000, random_state: int = 0) -> pd.DataFrame:
    """Per strategy: runs, and for each AUC its mean, bootstrap interval and std."""
    rows = []
    for strategy, group in runs.groupby("strategy", sort=False):
        row = {"strategy": strategy, "runs": len(group)}
        for column in AUCS:
            values = group[column].to_numpy()
            low, high = bootstrap_interval(
                values, n_boot=n_boot, random_state=_seed_for(random_state, strategy, column)
            )
            row |= {
                f"{column}": float(values.mean()),
                f"{column}_low": low,
                f"{column}_high": high,
                f"{column}_std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
            }
        for score in FINAL_SCORES:
            if f"final_{score}" in group:
                row[f"final_{score}"] = float(group[f"final_{score}"].mean())
        if "final_noisy_ratio" in group:
            row["final_noisy_ratio"] = float(group["final_noisy_ratio"].mean())
            row["final_noisy_ratio_std"] = (
                float(group["final_noisy_ratio"].std(ddof=1)) if len(group) > 1 else math.nan
            )
        rows.append(row)
    return pd.DataFrame(rows)


def paired_comparison(
    runs: pd.DataFrame,
    baseline: str,
    *,
    auc: str = "auc_trapezoid",
    n_boot: int = 2000,
    random_state: int = 0,
) -> pd.DataFrame:
    """Each strategy against ``baseline``, paired by seed and half.

    Columns: pairs, wins, losses, ties, win_rate (ties count half), the mean AUC difference
    with its bootstrap interval, and the two-sided Wilcoxon signed-rank p-value over the
    pairs (1.0 when every difference is zero).
    """
    from scipy.stats import wilcoxon

    base = runs[runs["strategy"] == baseline].set_index(["seed", "half"])[auc]
    rows = []
    for strategy, group in runs.groupby("strategy", sort=False):
        if strategy == baseline:
            continue
        paired = (
            group.set_index(["seed", "half"])[auc].to_frame("a").join(base.rename("b"), how="inner")
        )
        diff = (paired["a"] - paired["b"]).to_numpy()
        n = diff.shape[0]
        wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
        if n == 0:
            p_value = math.nan
        elif np.all(diff == 0):
            p_value = 1.0
        else:
            p_value = float(wilcoxon(diff, zero_method="wilcox").pvalue)
        low, high = bootstrap_interval(
            diff, n_boot=n_boot, random_state=_seed_for(random_state, strategy, baseline, auc)
        )
        rows.append(
            {
                "strategy": strategy,
                "pairs": n,
                "wins": wins,
                "losses": losses,
                "ties": n - wins - losses,
                "win_rate": (wins + 0.5 * (n - wins - losses)) / n if n else math.nan,
                "mean_difference": float(diff.mean()) if n else math.nan,
                "difference_low": low,
                "difference_high": high,
                "wilcoxon_p": p_value,
            }
        )
    return pd.DataFrame(rows)


# -- plots ------------------------------------------------------------------------------------


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot(1, 1, 1)


def _save(figure, path: Path) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        figure.savefig(temporary, format="png", bbox_inches="tight")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def plot_curves(
    iterations: pd.DataFrame,
    metric: str,
    path: Path,
    *,
    ylabel: str,
    n_boot: int = 2000,
    random_state: int = 0,
) -> None:
    """Mean of ``metric`` by labels, one line and 95% band per strategy."""
    figure, axes = _figure()
    for strategy, group in iterations.groupby("strategy", sort=False):
        table = group.pivot_table(
            index=["seed", "half"], columns="iteration", values=metric, dropna=False
        )
        x = group.groupby("iteration")["n_labeled"].mean().reindex(table.columns).to_numpy()
        mean, low, high = curve_band(
            table.to_numpy(dtype=float),
            n_boot=n_boot,
            random_state=_seed_for(random_state, strategy, metric, "curve"),
        )
        (line,) = axes.plot(x, mean, label=str(strategy), linewidth=1.6)
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.18, linewidth=0)
    axes.set_xlabel("labeled rows")
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    _save(figure, path)


# -- the page ---------------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, digits: int = 1) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _interval(low, high, digits: int = 1) -> str:
    if math.isnan(low):
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def _p(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2g}" if value >= 0.001 else "< 0.001"


def _table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def auc_labels(quality: str = "accuracy") -> dict[str, str]:
    """The AUC columns' names, for the score the curves follow (``quality_measure``).

    Examples
    --------
    >>> auc_labels("micro_f1")["auc_mean_accuracy"]
    'AUC, mean micro F1 (%)'
    """
    if quality == "accuracy":
        return dict(AUCS)
    return {
        "auc_trapezoid": AUCS["auc_trapezoid"],
        "auc_mean_accuracy": f"AUC, mean {_name(quality)} (%)",
    }


def _name(score: str) -> str:
    return {"micro_f1": "micro F1", "macro_f1": "macro F1", "hamming_loss": "Hamming loss"}.get(
        score, score.replace("_", " ")
    )


def _final_scores(table: pd.DataFrame) -> list[str]:
    """The final scores the AUC table shows: accuracy, or the multi-label scores."""
    if "final_micro_f1" in table:
        return ["micro_f1", "macro_f1", "hamming_loss", "subset_accuracy"]
    return ["accuracy"]


def _auc_rows(table: pd.DataFrame, quality: str = "accuracy") -> tuple[list[str], list[list[str]]]:
    headers = ["strategy", "runs"]
    for label in auc_labels(quality).values():
        headers += [label, "95% interval", "std"]
    noisy = "final_noisy_ratio" in table
    finals = _final_scores(table)
    headers += [f"final {_name(score)}" for score in finals]
    headers += ["final noisy ratio (NSR, %)"] if noisy else []
    rows = []
    for record in table.to_dict("records"):
        row = [record["strategy"], str(record["runs"])]
        for column in AUCS:
            row += [
                _number(record[column]),
                _interval(record[f"{column}_low"], record[f"{column}_high"]),
                _number(record[f"{column}_std"]),
            ]
        row += [_number(record[f"final_{score}"], 3) for score in finals]
        if noisy:
            row.append(
                f"{_number(100 * record['final_noisy_ratio'])} ± "
                f"{_number(100 * record['final_noisy_ratio_std'])}"
            )
        rows.append(row)
    return headers, rows


def _comparison_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    headers = [
        "strategy",
        "pairs",
        "wins / ties / losses",
        "win rate",
        "mean AUC difference",
        "95% interval",
        "Wilcoxon p",
    ]
    rows = [
        [
            r["strategy"],
            str(r["pairs"]),
            f"{r['wins']} / {r['ties']} / {r['losses']}",
            f"{100 * r['win_rate']:.0f}%" if not math.isnan(r["win_rate"]) else "–",
            f"{r['mean_difference']:+.2f}" if not math.isnan(r["mean_difference"]) else "–",
            _interval(r["difference_low"], r["difference_high"], 2),
            _p(r["wilcoxon_p"]),
        ]
        for r in table.to_dict("records")
    ]
    return headers, rows


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.9em; }
dt { font-weight: 600; } dd { margin: 0 0 0.4em 1.5em; }
"""


def write_report(
    root: Path | str,
    *,
    baseline: str = "random",
    auc: str = "auc_trapezoid",
    n_boot: int = 2000,
    random_state: int = 0,
) -> Path:
    """Write ``report/index.html``, the plots and the tables of the experiment in ``root``.

    Only complete runs enter the tables and curves; the page says how many are missing.

    Parameters
    ----------
    root : path
        The experiment folder.
    baseline : str
        The strategy the others are compared with, paired by seed (skipped if absent).
    auc : {"auc_trapezoid", "auc_mean_accuracy"}
        The AUC of the paired comparison.
    n_boot : int
        Bootstrap resamples per interval.
    random_state : int
        Seed of the bootstrap.

    Returns
    -------
    Path
        The ``index.html`` written.
    """
    if auc not in AUCS:
        raise InputError(f"auc must be one of {', '.join(AUCS)}, got {auc!r}")
    experiment = ExperimentDir(root)
    config = experiment.config
    iterations = load_iterations(experiment, complete_only=True)
    if iterations.empty:
        raise InputError(
            f"{experiment.root}: no complete run yet; run or resume the experiment first"
        )
    expected = len(experiment.run_keys())
    runs = run_summaries(experiment, iterations)
    out = experiment.root / "report"
    out.mkdir(exist_ok=True)

    aucs = auc_table(runs, n_boot=n_boot, random_state=random_state)
    strategies = list(runs["strategy"].unique())
    has_baseline = baseline in strategies
    comparison = (
        paired_comparison(runs, baseline, auc=auc, n_boot=n_boot, random_state=random_state)
        if has_baseline
        else pd.DataFrame()
    )
    atomic_write_text(out / "auc.csv", aucs.to_csv(index=False))
    atomic_write_text(out / "runs.csv", runs.to_csv(index=False))
    if has_baseline:
        atomic_write_text(out / "comparison.csv", comparison.to_csv(index=False))

    quality = quality_measure(experiment.measures)
    labels = auc_labels(quality)
    plots = [("learning_curves.png", quality, f"test {_name(quality)}")]
    plots += [
        (f"metric_{name}.png", name, name.replace("_", " "))
        for name in experiment.measures
        if name not in ("n_labeled", quality)
    ]
    for filename, metric, label in plots:
        plot_curves(
            iterations,
            metric,
            out / filename,
            ylabel=label,
            n_boot=n_boot,
            random_state=random_state,
        )

    auc_headers, auc_rows = _auc_rows(aucs, quality)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(config.title)}: experiment report</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_e(config.title)}</h1>",
        _setup(experiment, len(runs), expected),
        "<h2>Area under the learning curve</h2>",
        _table(auc_headers, auc_rows, "auc"),
        '<p class="note">',
        _e(
            f"AUC, trapezoid: the area under the test {_name(quality)} curve over the labeled "
            f"rows, divided by their range. {labels['auc_mean_accuracy'].removesuffix(' (%)')}: "
            f"the mean of the test {_name(quality)} of the iterations, as in the tutorial's "
            "Table 1. Intervals: 95% percentile bootstrap of the mean over runs "
            f"({n_boot} resamples); std over runs."
        ),
        "</p>",
    ]
    if has_baseline:
        comparison_headers, comparison_rows = _comparison_rows(comparison)
        parts += [
            f"<h2>Against {_e(baseline)}</h2>",
            _table(comparison_headers, comparison_rows, "comparison"),
            '<p class="note">',
            _e(
                f"Paired by seed: each run against the {baseline} run of the same seed (same "
                f"split, same initial labels), on {labels[auc]}. Win rate counts ties as half a "
                "win. Wilcoxon signed-rank test, two-sided, over the pairs; interval: "
                "bootstrap of the mean difference."
            ),
            "</p>",
        ]
    else:
        parts.append(f"<p class='note'>{_e(f'No {baseline!r} runs: no paired comparison.')}</p>")
    parts.append("<h2>Learning curves</h2>")
    parts.append(
        f'<p class="note">{_e("Mean over runs, with the 95% bootstrap band of the mean.")}</p>'
    )
    known = measures_for(experiment.data().multi_label)
    for filename, metric, label in plots:
        description = known[metric].description if metric in known else ""
        parts += [
            f"<h3>{_e(label)}</h3>",
            f'<p class="note">{_e(description)}</p>' if description else "",
            f'<img src="{_e(filename)}" alt="{_e(label)} by labeled rows">',
        ]
    parts.append("</body></html>")
    page = out / "index.html"
    atomic_write_text(page, "\n".join(parts) + "\n")

    summary = [f"# {config.title}\n", "## AUC\n", _markdown(auc_headers, auc_rows)]
    if has_baseline:
        summary += [f"\n## Against {baseline} ({auc})\n", _markdown(*_comparison_rows(comparison))]
    atomic_write_text(out / "summary.md", "\n".join(summary))
    return page


def _setup(experiment: ExperimentDir, complete: int, expected: int) -> str:
    config = experiment.config
    data = config.data
    source = {
        "sklearn": f"scikit-learn's {data.sklearn}",
        "file": f"{data.file} (label {data.label or ', '.join(data.labels or [])})",
        "project": f"project {data.project}, dataset {data.dataset}",
        "generator": f"generator {data.generator} (random_state {data.random_state})",
    }[data.kind]
    loaded = experiment.data()
    rows = loaded.X.shape
    model = config.model.name + (" with standardization" if config.model.standardize else "")
    if loaded.multi_label:
        model += f", multi-label ({config.model.multi_label_method}, thresholds 0.5)"
    if config.model.params:
        model += " " + ", ".join(f"{k}={v}" for k, v in config.model.params.items())
    strategies = ", ".join(
        s.key + (f" ({s.name} {s.params})" if s.params or s.label else "")
        for s in config.strategies
    )
    split = (
        "two halves, swapped (two runs per seed)"
        if config.test.swap_halves
        else f"{config.test.fraction:g} of the rows held out"
        + (", stratified" if config.test.stratify else "")
    )
    sizes = config.batch_sizes
    items = {
        "data": f"{source}: {rows[0]} rows, {rows[1]} features"
        + (
            f", {len(loaded.class_names)} classes, {loaded.y.sum(axis=1).mean():.2f} per row"
            if loaded.multi_label
            else ""
        ),
        "model": model,
        "strategies": strategies,
        "labels": (
            f"{config.initial.size} initial ({config.initial.method}), then {len(sizes)} "
            f"batches of {config.batch_size} → {config.final_size}"
        ),
        "seeds": f"{len(config.seed_list)}; test split: {split}",
        "oracle": (
            f"noisy, {100 * config.label_noise:g}% of answers wrong"
            if config.label_noise
            else "exact"
        ),
        "runs": f"{complete} complete of {expected}"
        + ("" if complete == expected else " (the others are left out: resume them)"),
    }
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items.items()) + "</dl>"
