"""How good is the stopping advice? Replayed over simulated runs, against the truth.

Every logged run of an experiment holds, per iteration, the monitoring signals the advice
reads and the test accuracy it never sees. Replaying a policy (``metrics.advice``) over the
iterations gives the first one at which it would have said "stop", with only what was known
then; the run's accuracy there, at the budget's end and at its best tells what stopping cost.
Nothing is refitted: an evaluation of a hundred policies over a thousand runs takes seconds.

Per run and policy:

- ``saving``: the share of the budget's labels not bought, ``(n_final - n_stop) / n_final``
  (0 when the policy never says stop);
- ``loss_final`` and ``loss_best``: accuracy points lost against the budget's end and against
  the run's best iteration;
- ``premature_1`` and ``premature_2``: the stop lost more than 1 (2) points against the end.

The hindsight stop is the first iteration within 1 point of the final accuracy: the most a
rule could save without a premature stop. A run is evaluated twice, without a holdout (as on
most live projects) and with the small holdout the harness logs (``holdout_accuracy``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from active_labeling.errors import InputError
from active_labeling.experiment.cache import ExperimentDir, atomic_write_text, load_iterations
from active_labeling.experiment.measures import quality_measure
from active_labeling.experiment.report import bootstrap_interval
from active_labeling.metrics.advice import (
    ADVICE_METRICS,
    HOLDOUT_ACCURACY,
    RULES,
    SIGNALS,
    AdvicePolicy,
    History,
    classic_policy,
    first_stop,
    preset_names,
    preset_policy,
)

#: A stop losing more than this many accuracy points against the budget's end is premature.
PREMATURE_POINTS = (1.0, 2.0)
#: Runs where hindsight saves at least this share are where stopping matters.
BIG_SAVING = 0.2
VARIANTS = ("no holdout", "holdout")


def standard_policies() -> dict[str, AdvicePolicy]:
    """The presets, the classic advice, and each rule alone (its default parameters)."""
    policies = {f"advice: {name}": preset_policy(name) for name in preset_names()}
    policies["advice: classic"] = classic_policy()
    for name, rule in RULES.items():
        policies[name] = AdvicePolicy(stop_rules=(rule(),))
    return policies


@dataclass(frozen=True)
class RunHistory:
    """One run: its key, its advice history, and the accuracy the advice never sees."""

    dataset: str
    strategy: str
    seed: int
    half: int
    history: History
    accuracy: np.ndarray

    @property
    def n_labels(self) -> np.ndarray:
        return self.history.n_labels


def run_histories(root: Path | str, dataset: str | None = None) -> list[RunHistory]:
    """Every complete run of the experiment in ``root``, ready for :func:`evaluate`."""
    experiment = ExperimentDir(root)
    name = dataset or Path(root).name
    iterations = load_iterations(experiment, complete_only=True)
    if iterations.empty:
        raise InputError(f"{root}: no complete run yet; run or resume the experiment first")
    present = [m for m in SIGNALS if m in iterations.columns]
    if not any(m in ADVICE_METRICS for m in present):
        raise InputError(
            f"{root}: the runs logged no stopping signal (monitoring disabled?); the advice "
            "needs monitoring = {{ enabled = true }}"
        )
    quality = quality_measure(experiment.measures)  # accuracy, or micro-F1 for label sets
    runs = []
    for (strategy, seed, half), run in iterations.groupby(["strategy", "seed", "half"]):
        run = run.sort_values("iteration")
        history = History(
            run["n_labeled"].to_numpy(dtype=np.float64),
            {m: run[m].to_numpy(dtype=np.float64) for m in present},
        )
        runs.append(
            RunHistory(name, str(strategy), int(seed), int(half), history, run[quality].to_numpy())
        )
    return runs


def hindsight_stop(accuracy: np.ndarray, points: float = PREMATURE_POINTS[0]) -> int:
    """The first iteration whose accuracy is within ``points`` of the final one."""
    within = accuracy >= accuracy[-1] - points / 100 - 1e-12
    return int(np.flatnonzero(within)[0])


def _outcome(run: RunHistory, stop: int | None) -> dict:
    last = len(run.accuracy) - 1
    at = last if stop is None else stop
    n_final, n_stop = run.n_labels[last], run.n_labels[at]
    loss = 100 * (run.accuracy[last] - run.accuracy[at])
    return {
        "stopped": stop is not None,
        "stop_iteration": at,
        "n_stop": int(n_stop),
        "n_final": int(n_final),
        "saving": float((n_final - n_stop) / n_final),
        "loss_final": float(loss),
        "loss_best": float(100 * (run.accuracy.max() - run.accuracy[at])),
        "premature_1": bool(loss > PREMATURE_POINTS[0] + 1e-9),
        "premature_2": bool(loss > PREMATURE_POINTS[1] + 1e-9),
    }


def evaluate(
    runs: list[RunHistory],
    policies: dict[str, AdvicePolicy],
    variants: tuple[str, ...] = VARIANTS,
) -> pd.DataFrame:
    """One row per (run, variant, policy): where it stopped and what that cost.

    Each row also carries the run's hindsight saving. A policy that needs the holdout is
    left out of the "no holdout" variant, where it could never vote.
    """
    rows = []
    for run in runs:
        hindsight = _outcome(run, hindsight_stop(run.accuracy))
        key = {
            "dataset": run.dataset,
            "strategy": run.strategy,
            "seed": run.seed,
            "half": run.half,
        }
        for variant in variants:
            if variant not in VARIANTS:
                raise InputError(f"unknown variant {variant!r}; choose from {VARIANTS}")
            if variant == "holdout" and HOLDOUT_ACCURACY not in run.history.values:
                continue
            history = run.history if variant == "holdout" else run.history.without(HOLDOUT_ACCURACY)
            for label, policy in policies.items():
                if variant == "no holdout" and _needs_holdout(policy):
                    continue
                outcome = _outcome(run, first_stop(history, policy))
                rows.append(
                    {
                        **key,
                        "variant": variant,
                        "policy": label,
                        **outcome,
                        "hindsight_saving": hindsight["saving"],
                    }
                )
    return pd.DataFrame(rows)


def _needs_holdout(policy: AdvicePolicy) -> bool:
    return all(
        rule.metric == HOLDOUT_ACCURACY and rule.name != "cost" for rule in policy.stop_rules
    )


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion (NaN for n = 0).

    Examples
    --------
    >>> low, high = wilson_interval(0, 50)
    >>> low, round(high, 3)
    (0.0, 0.071)
    """
    if n == 0:
        return math.nan, math.nan
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(outcomes: pd.DataFrame, *, by_dataset: bool = True, random_state: int = 0):
    """Per (dataset, variant, policy) and over all data sets: the figures of the tables.

    Shares and savings are fractions; losses are accuracy points. Intervals are 95%:
    percentile bootstrap of the mean for savings and losses, Wilson for shares.
    """
    frames = [outcomes.assign(dataset="all")]
    if by_dataset:
        frames.insert(0, outcomes)
    rows = []
    for (dataset, variant, policy), group in pd.concat(frames).groupby(
        ["dataset", "variant", "policy"], sort=False
    ):
        n = len(group)
        saving_low, saving_high = bootstrap_interval(group["saving"], random_state=random_state)
        loss_low, loss_high = bootstrap_interval(group["loss_final"], random_state=random_state)
        big = group[group["hindsight_saving"] >= BIG_SAVING]
        row = {
            "dataset": dataset,
            "variant": variant,
            "policy": policy,
            "runs": n,
            "stopped": group["stopped"].mean(),
            "saving": group["saving"].mean(),
            "saving_low": saving_low,
            "saving_high": saving_high,
            "saving_median": group["saving"].median(),
            "loss_final": group["loss_final"].mean(),
            "loss_final_low": loss_low,
            "loss_final_high": loss_high,
            "loss_best": group["loss_best"].mean(),
            "hindsight_saving": group["hindsight_saving"].mean(),
            "big_runs": len(big),
            "big_stopped": big["stopped"].mean() if len(big) else math.nan,
            "big_saving_ratio": (
                big["saving"].mean() / big["hindsight_saving"].mean() if len(big) else math.nan
            ),
        }
        for column in ("premature_1", "premature_2"):
            count = int(group[column].sum())
            low, high = wilson_interval(count, n)
            row[column] = count / n
            row[f"{column}_low"], row[f"{column}_high"] = low, high
        rows.append(row)
    return pd.DataFrame(rows)


def meets_targets(row) -> bool:
    """The issue's targets: at most 2% premature stops; where hindsight saves 20% or more,
    a stop in at least 70% of runs and at least 60% of hindsight's saving."""
    return bool(
        row["premature_1"] <= 0.02 and row["big_stopped"] >= 0.7 and row["big_saving_ratio"] >= 0.6
    )


# -- the report -----------------------------------------------------------------------------


def _pct(value: float, digits: int = 0) -> str:
    return "-" if not np.isfinite(value) else f"{100 * value:.{digits}f}%"


def _interval(low: float, high: float, scale: float = 100, digits: int = 0) -> str:
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table, one row per (dataset, variant, policy)."""
    headers = [
        "data set",
        "holdout",
        "policy",
        "runs",
        "stopped",
        "labels saved, mean [95%]",
        "median saved",
        "points lost vs end",
        "vs best",
        "premature > 1 pt [95%]",
        "> 2 pt",
        "hindsight saves",
        "where hindsight saves ≥ 20%: stopped, share of its saving",
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in summary.iterrows():
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r["dataset"]),
                    "yes" if r["variant"] == "holdout" else "no",
                    str(r["policy"]),
                    str(int(r["runs"])),
                    _pct(r["stopped"]),
                    _pct(r["saving"]) + _interval(r["saving_low"], r["saving_high"]),
                    _pct(r["saving_median"]),
                    f"{r['loss_final']:.2f}",
                    f"{r['loss_best']:.2f}",
                    _pct(r["premature_1"], 1)
                    + _interval(r["premature_1_low"], r["premature_1_high"], digits=1),
                    _pct(r["premature_2"], 1),
                    _pct(r["hindsight_saving"]),
                    f"{_pct(r['big_stopped'])}, {_pct(r['big_saving_ratio'])} "
                    f"({int(r['big_runs'])} runs)",
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def plot_pareto(summary: pd.DataFrame, path: Path, title: str = "") -> None:
    """Labels saved against premature stops, one point per policy (all data sets)."""
    from active_labeling.experiment.report import _figure, _save

    figure, axes = _figure()
    overall = summary[summary["dataset"] == "all"]
    markers = {"no holdout": "o", "holdout": "s"}
    for variant, rows in overall.groupby("variant", sort=False):
        axes.scatter(
            100 * rows["premature_1"],
            100 * rows["saving"],
            marker=markers.get(variant, "o"),
            label=f"{variant}",
            alpha=0.8,
        )
        for _, r in rows.iterrows():
            axes.annotate(
                str(r["policy"]),
                (100 * r["premature_1"], 100 * r["saving"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if len(overall):
        hindsight = 100 * overall["hindsight_saving"].iloc[0]
        axes.axhline(hindsight, color="grey", linestyle="--", linewidth=1)
        axes.annotate(f"hindsight: {hindsight:.0f}%", (0, hindsight), fontsize=7)
    axes.axvline(2, color="red", linestyle=":", linewidth=1)
    axes.set_xlabel("runs stopped more than 1 point below the budget's end (%)")
    axes.set_ylabel("labels saved, mean over runs (%)")
    axes.set_title(title or "Stopping advice: labels saved vs premature stops")
    axes.legend(loc="lower right", fontsize=8)
    _save(figure, path)


def write_advice_report(
    roots: list[Path | str], out: Path | str | None = None
) -> tuple[Path, pd.DataFrame]:
    """Evaluate the standard policies on the experiments in ``roots``; write the report.

    Writes ``advice.csv`` (one row per run, variant and policy), ``advice-summary.csv``,
    ``advice.md`` and ``advice-pareto.png`` into ``out`` (default: the first experiment's
    ``report`` folder). Returns the Markdown file and the summary.
    """
    if not roots:
        raise InputError("give at least one experiment folder")
    runs = [run for root in roots for run in run_histories(root)]
    outcomes = evaluate(runs, standard_policies())
    summary = summarize(outcomes)
    folder = Path(out) if out else Path(roots[0]) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "advice.csv", outcomes.to_csv(index=False))
    atomic_write_text(folder / "advice-summary.csv", summary.to_csv(index=False))
    plot_pareto(summary, folder / "advice-pareto.png")
    text = "\n".join(
        [
            "# Stopping advice replayed over the logged runs",
            "",
            f"{len(runs)} runs from {len(roots)} experiment(s). Saving: the share of the "
            "budget's labels not bought. Premature: the stop lost more than 1 (2) accuracy "
            "points against the budget's end. Hindsight: the first iteration within 1 point "
            "of the final accuracy.",
            "",
            markdown_table(summary),
            "",
            "![labels saved vs premature stops](advice-pareto.png)",
            "",
        ]
    )
    path = folder / "advice.md"
    atomic_write_text(path, text)
    return path, summary
