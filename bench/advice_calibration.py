"""Choose the default stopping advice from the logged runs of ``bench/advice_study.py``.

Every rule of ``metrics.advice`` is replayed over a grid of its parameters, alone and in
pairs (both must say stop), on every run of every data set, without a holdout and with the
small holdout the harness logs. Each preset (``PRESETS``: cautious, the default, balanced
and eager) is chosen in two steps, never on one data set:

1. without a holdout: among the policies whose premature stops (more than 1 accuracy point
   below the budget's end) are at most the preset's share of the runs of the data sets it
   is chosen on, the one that saves the most labels on average;
2. with a holdout: the same, among that policy alone and that policy *and* each holdout
   rule (so the preset, where no holdout exists, is the first choice again).

How well that procedure does on data it has not seen is measured by leave-one-data-set-out:
the choice is made on 10 data sets and scored on the 11th, for each in turn. The results
go to ``docs/advice-study.md`` and, for the dashboard, to
``python-lib/active_labeling/metrics/advice_calibration.json``.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from active_labeling.experiment.advice import (
    RunHistory,
    evaluate,
    hindsight_stop,
    markdown_table,
    meets_targets,
    plot_pareto,
    run_histories,
    summarize,
)
from active_labeling.experiment.cache import load_iterations
from active_labeling.metrics.advice import (
    HOLDOUT_ACCURACY,
    AdvicePolicy,
    ClassificationChange,
    ConfidencePeak,
    ContradictionsLow,
    CostBased,
    HoldoutPlateau,
    MaxConfidence,
    OverallUncertainty,
    StabilizingPredictions,
    StoppingRule,
    UncertaintyVariance,
    classic_policy,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "advice-study.md"
IMG = ROOT / "docs" / "img" / "advice-pareto.png"
CALIBRATION = ROOT / "python-lib" / "active_labeling" / "metrics" / "advice_calibration.json"
#: The presets: the premature-stop share each may reach; the first is the default.
PRESETS = {"cautious": 0.02, "balanced": 0.05, "eager": 0.10}
DEFAULT_PRESET = "cautious"
#: Singles kept for the pairs: the best savers among those with at most this many
#: premature stops.
PAIR_POOL_PREMATURE = 0.06
PAIR_POOL_SIZE = 10


def label_rules(rules) -> str:
    return " & ".join(rule.describe() for rule in rules)


def label_of(policy: AdvicePolicy) -> str:
    return label_rules(policy.stop_rules)


def no_holdout_grid() -> list[StoppingRule]:
    rules: list[StoppingRule] = []
    rules += [ContradictionsLow(k, t) for k in (2, 3, 4, 5) for t in (0.0, 0.005, 0.01, 0.02, 0.03)]
    rules += [ClassificationChange(r) for r in (1, 2, 3, 4, 5)]
    rules += [
        StabilizingPredictions(w, t)
        for w in (2, 3, 4, 5)
        for t in (0.95, 0.97, 0.98, 0.99, 0.995, 1.0)
    ]
    rules += [OverallUncertainty(t, r) for t in (0.02, 0.05, 0.1, 0.15) for r in (1, 2, 3)]
    rules += [MaxConfidence(t, r) for t in (0.05, 0.1, 0.2, 0.3) for r in (1, 2, 3)]
    rules += [UncertaintyVariance(w) for w in (2, 3, 4)]
    rules += [ConfidencePeak(r) for r in (2, 3, 4)]
    rules += [CostBased(future_predictions=f) for f in (1e3, 1e4, 1e5)]
    return rules


def holdout_grid() -> list[StoppingRule]:
    rules: list[StoppingRule] = [
        HoldoutPlateau(k, g) for k in (2, 3, 4, 5) for g in (0.0, 0.005, 0.01, 0.02)
    ]
    rules += [CostBased(future_predictions=f) for f in (1e3, 1e4, 1e5)]
    return rules


# -- fast replay: each rule's vote at each version, once per run ----------------------------


def vote_matrix(runs: list[RunHistory], rules: list[StoppingRule], variant: str):
    """votes[r][i] is an int array over run i's versions: 1 stop, 0 go on, -1 wait or absent."""
    votes = {}
    for rule in rules:
        per_run = []
        for run in runs:
            history = run.history if variant == "holdout" else run.history.without(HOLDOUT_ACCURACY)
            column = np.full(len(history), -1, dtype=np.int8)
            for t in range(len(history)):
                vote = rule.vote(history.upto(t))
                if vote is not None and vote.stop is not None:
                    column[t] = int(vote.stop)
            per_run.append(column)
        votes[rule] = per_run
    return votes


def outcomes_of(runs, votes, rules, variant: str, label: str) -> pd.DataFrame:
    """Where the AND of ``rules`` first says stop in each run, and what that cost."""
    rows = []
    for i, run in enumerate(runs):
        together = np.logical_and.reduce([votes[rule][i] == 1 for rule in rules])
        hits = np.flatnonzero(together)
        stop = int(hits[0]) if hits.shape[0] else None
        last = len(run.accuracy) - 1
        at = last if stop is None else stop
        h = hindsight_stop(run.accuracy)
        n_final = run.n_labels[last]
        loss = 100 * (run.accuracy[last] - run.accuracy[at])
        rows.append(
            {
                "dataset": run.dataset,
                "strategy": run.strategy,
                "seed": run.seed,
                "half": run.half,
                "variant": variant,
                "policy": label,
                "stopped": stop is not None,
                "stop_iteration": at,
                "n_stop": int(run.n_labels[at]),
                "n_final": int(n_final),
                "saving": float((n_final - run.n_labels[at]) / n_final),
                "loss_final": float(loss),
                "loss_best": float(100 * (run.accuracy.max() - run.accuracy[at])),
                "premature_1": bool(loss > 1 + 1e-9),
                "premature_2": bool(loss > 2 + 1e-9),
                "hindsight_saving": float((n_final - run.n_labels[h]) / n_final),
            }
        )
    return pd.DataFrame(rows)


def quick_table(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per policy: pooled saving and premature share, and the worst data set's premature."""
    pooled = outcomes.groupby("policy").agg(
        saving=("saving", "mean"), premature=("premature_1", "mean"), stopped=("stopped", "mean")
    )
    per_dataset = outcomes.groupby(["policy", "dataset"])["premature_1"].mean()
    pooled["worst_premature"] = per_dataset.groupby("policy").max()
    return pooled


def choose(outcomes: pd.DataFrame, datasets, max_premature: float) -> str:
    """The policy saving the most on ``datasets`` among those within ``max_premature``."""
    table = quick_table(outcomes[outcomes["dataset"].isin(datasets)])
    feasible = table[table["premature"] <= max_premature]
    if feasible.empty:  # nothing meets it: the safest
        return str(table["premature"].idxmin())
    return str(feasible["saving"].idxmax())


def plain_candidates(runs):
    """Outcomes of every candidate policy without a holdout (and which rules each holds)."""
    frames, policies = [], {}
    singles = no_holdout_grid()
    votes = vote_matrix(runs, singles, "no holdout")
    for rule in singles:
        label = label_rules((rule,))
        policies[label] = (rule,)
        frames.append(outcomes_of(runs, votes, (rule,), "no holdout", label))
    table = quick_table(pd.concat(frames))
    pool = table[table["premature"] <= PAIR_POOL_PREMATURE].nlargest(PAIR_POOL_SIZE, "saving")
    by_label = {label_rules((r,)): r for r in singles}
    for a, b in itertools.combinations(pool.index, 2):
        rules = (by_label[a], by_label[b])
        if rules[0].name == rules[1].name:
            continue
        label = label_rules(rules)
        policies[label] = rules
        frames.append(outcomes_of(runs, votes, rules, "no holdout", label))
    return pd.concat(frames, ignore_index=True), policies


def holdout_candidates(runs, base: tuple):
    """With a holdout: ``base`` alone, and ``base`` and each holdout rule (both must stop),
    so that the chosen policy, run where no holdout exists, is ``base`` again."""
    frames, policies = [], {}
    holdout_rules = holdout_grid()
    votes = vote_matrix(runs, [*holdout_rules, *base], "holdout")
    for rules in [base, *[(*base, r) for r in holdout_rules]]:
        label = label_rules(rules)
        policies[label] = rules
        frames.append(outcomes_of(runs, votes, rules, "holdout", label))
    return pd.concat(frames, ignore_index=True), policies


def calibrate_preset(runs, datasets, plain, plain_policies, max_premature, held_cache):
    """The preset's policy without and with a holdout, and its leave-one-out outcomes."""

    def held_for(base_label):
        if base_label not in held_cache:
            held_cache[base_label] = holdout_candidates(runs, plain_policies[base_label])
        return held_cache[base_label]

    best_plain = choose(plain, datasets, max_premature)
    held, held_policies = held_for(best_plain)
    best_held = choose(held, datasets, max_premature)
    # Leave one data set out: both choices made again on the other ten.
    plain_loo, held_loo, chosen = [], [], {}
    name = "chosen on the other data sets"
    for out in datasets:
        others = [d for d in datasets if d != out]
        base = choose(plain, others, max_premature)
        frame, _ = held_for(base)
        with_holdout = choose(frame, others, max_premature)
        chosen[out] = (base, with_holdout)
        plain_loo.append(
            plain[(plain["dataset"] == out) & (plain["policy"] == base)].assign(policy=name)
        )
        held_loo.append(
            frame[(frame["dataset"] == out) & (frame["policy"] == with_holdout)].assign(policy=name)
        )
    return {
        "plain": best_plain,
        "held": best_held,
        "rules": held_policies[best_held],
        "rows": pd.concat(
            [plain[plain["policy"] == best_plain], held[held["policy"] == best_held]]
        ),
        "loo": pd.concat(plain_loo + held_loo, ignore_index=True),
        "chosen": chosen,
    }


def _check_fast_replay(runs, rows: pd.DataFrame, rules: tuple) -> None:
    """The fast replay must agree with the library's own (``first_stop``) on the choice."""
    sample = runs[:: max(1, len(runs) // 60)]
    keys = ["dataset", "strategy", "seed", "half"]
    for variant, part in rows.groupby("variant"):
        label = part["policy"].iloc[0]
        stop_rules = (
            rules
            if variant == "holdout"
            else tuple(r for r in rules if r.metric != HOLDOUT_ACCURACY)
        )
        slow = evaluate(sample, {label: AdvicePolicy(stop_rules=stop_rules)}, (variant,))
        fast = part.set_index(keys).loc[slow.set_index(keys).index, "n_stop"]
        assert (fast.to_numpy() == slow["n_stop"].to_numpy()).all(), label


def _figures(row) -> dict:
    keys = (
        "runs",
        "stopped",
        "saving",
        "saving_low",
        "saving_high",
        "saving_median",
        "loss_final",
        "premature_1",
        "premature_1_low",
        "premature_1_high",
        "premature_2",
        "hindsight_saving",
        "big_runs",
        "big_stopped",
        "big_saving_ratio",
    )
    return {k: (None if pd.isna(row[k]) else float(row[k])) for k in keys}


def calibrate(roots: list[Path]) -> None:
    start = time.perf_counter()
    runs = [run for root in roots for run in run_histories(root)]
    datasets = list(dict.fromkeys(run.dataset for run in runs))
    print(f"calibrating on {len(runs)} runs of {len(datasets)} data sets")
    plain, plain_policies = plain_candidates(runs)
    held_cache: dict = {}
    presets = {}
    for name, budget in PRESETS.items():
        presets[name] = calibrate_preset(runs, datasets, plain, plain_policies, budget, held_cache)
        _check_fast_replay(runs, presets[name]["rows"], presets[name]["rules"])
        print(f"{name}: {presets[name]['held']} ({time.perf_counter() - start:.0f} s)")

    # Each rule's best setting within the default's budget, for the table and the plot.
    best_by_rule: dict = {}
    table = quick_table(plain)
    for label in table.index:
        rules = plain_policies[label]
        if len(rules) != 1:
            continue
        row = table.loc[label]
        feasible = row["premature"] <= PRESETS[DEFAULT_PRESET]
        score = (feasible, row["saving"] if feasible else -row["premature"])
        current = best_by_rule.get(rules[0].name)
        if current is None or score > current[0]:
            best_by_rule[rules[0].name] = (score, label)
    rule_rows = pd.concat([plain[plain["policy"] == label] for _, label in best_by_rule.values()])
    rule_summary = summarize(rule_rows, by_dataset=False)
    classic = summarize(
        evaluate(runs, {"classic (before this study)": classic_policy()}), by_dataset=False
    )
    preset_rows = pd.concat(
        [p["rows"].assign(policy=f"{n}: " + p["rows"]["policy"]) for n, p in presets.items()]
    )
    plotted = pd.concat([rule_rows, preset_rows[preset_rows["variant"] == "no holdout"]])
    IMG.parent.mkdir(parents=True, exist_ok=True)
    plot_pareto(
        summarize(plotted, by_dataset=False),
        IMG,
        "Stopping rules at their best setting, and the presets (no holdout)",
    )
    calibration = {
        "source": "bench/advice_study.py (docs/advice-study.md)",
        "runs": len(runs),
        "datasets": datasets,
        "default": DEFAULT_PRESET,
        "presets": {},
    }
    for name, preset in presets.items():
        overall = summarize(preset["rows"], by_dataset=False).set_index("variant")
        loo = summarize(preset["loo"], by_dataset=False).set_index("variant")
        calibration["presets"][name] = {
            "max_premature": PRESETS[name],
            "rules": [{"rule": r.name, "params": dict(r.__dict__)} for r in preset["rules"]],
            "no_holdout": {
                "all": _figures(overall.loc["no holdout"]),
                "held_out": _figures(loo.loc["no holdout"]),
            },
            "holdout": {
                "all": _figures(overall.loc["holdout"]),
                "held_out": _figures(loo.loc["holdout"]),
            },
        }
    text = json.dumps(calibration, indent=2) + "\n"
    temporary = CALIBRATION.with_name(f".{CALIBRATION.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, CALIBRATION)
    write_doc(runs, datasets, presets, rule_summary, classic, time.perf_counter() - start)
    print(f"wrote {DOC} and {CALIBRATION}")


def write_doc(runs, datasets, presets, rule_summary, classic, seconds) -> None:
    strategies = sorted({r.strategy for r in runs})
    targets, overall_tables, per_dataset, chosen_lines = [], [], [], []
    for name, preset in presets.items():
        overall = summarize(preset["rows"], by_dataset=False)
        loo = summarize(preset["loo"], by_dataset=False)
        for label, frame in (("all data sets", overall), ("held out", loo)):
            for _, row in frame.iterrows():
                targets.append(
                    f"| {name} | {row['variant']} | {label} "
                    f"| {100 * row['premature_1']:.1f}% [{100 * row['premature_1_low']:.1f}, "
                    f"{100 * row['premature_1_high']:.1f}] "
                    f"| {100 * row['saving']:.0f}% [{100 * row['saving_low']:.0f}, "
                    f"{100 * row['saving_high']:.0f}] "
                    f"| {100 * row['big_stopped']:.0f}% | {100 * row['big_saving_ratio']:.0f}% "
                    f"| {'yes' if meets_targets(row) else 'no'} |"
                )
        overall_tables.append(
            pd.concat(
                [
                    overall.assign(policy=f"{name}: " + overall["policy"]),
                    loo.assign(policy=f"{name}: held out"),
                ]
            )
        )
        if name == DEFAULT_PRESET:
            per_dataset.append(summarize(preset["rows"]).query("dataset != 'all'"))
        chosen_lines += [
            f"- **{name}** (at most {100 * PRESETS[name]:.0f}% premature stops): "
            f"`{preset['held']}`; chosen with each data set held out:"
        ]
        chosen_lines += [
            f"  - {d}: `{base}`" + ("" if held == base else f", with a holdout `{held}`")
            for d, (base, held) in preset["chosen"].items()
        ]
    lines = [
        "# Advice study: the stopping advice measured against the truth",
        "",
        "Written by `bench/advice_study.py` (`python bench/advice_study.py`; the runs are",
        "cached under `bench/.cache/advice/`, the calibration is `bench/advice_calibration.py`).",
        "",
        "## Protocol",
        "",
        f"- {len(datasets)} data sets ({', '.join(datasets)}): the strategy study's real ones",
        "  and the two synthetic noisy-blob tasks; standardized logistic regression; 20 seeds;",
        "  strategies " + ", ".join(strategies) + ".",
        "- Per seed, half the rows are the test set; a budget of up to 300 labels (80% of the",
        "  pool on small data sets), batches of 5 (10 from 1,000 rows), stratified initial",
        "  labels (2 per class, at least 6).",
        "- Every iteration logs the signals the advice reads, on a fixed sample of 1,000 pool",
        "  rows, and the accuracy on a holdout of 100 test rows (what a team labels aside).",
        "- Each policy is replayed over every run, with only what was known at each iteration.",
        "  *Saved*: the share of the budget's labels not bought (0 when it never stops).",
        "  *Premature*: the stop lost more than 1 point of test accuracy against the budget's",
        "  end. *Hindsight*: the first iteration within 1 point of the final accuracy.",
        "- Candidates: every rule over a grid of its parameters, and pairs of the ten best",
        "  savers among those with at most 6% premature stops (both must say stop); with a",
        "  holdout, the policy chosen without one, alone or with a holdout rule.",
        "- A preset is the candidate that saves the most among those whose premature stops stay",
        "  within its budget over all runs. *Held out*: each data set scored with the choice",
        "  made on the other ten (leave one data set out), the honest figure for new data.",
        "",
        f"{len(runs)} runs; calibration {seconds / 60:.1f} min.",
        "",
        "## The presets and the targets",
        "",
        "Targets (issue 14): at most 2% premature stops; where hindsight saves 20% or more,",
        "a stop in at least 70% of the runs, saving at least 60% of what hindsight saves.",
        "",
        "| preset | holdout | figures on | premature > 1 pt [95%] | labels saved [95%] "
        "| where hindsight saves ≥ 20%: stopped | share of hindsight's saving | targets met |",
        "|---|---|---|---|---|---|---|---|",
        *targets,
        "",
        *chosen_lines,
        "",
        "### Every figure, over all data sets",
        "",
        markdown_table(pd.concat([*overall_tables, classic])),
        "",
        f"### Per data set: {DEFAULT_PRESET}, the default",
        "",
        markdown_table(pd.concat(per_dataset)),
        "",
        "## Each rule at its best setting",
        "",
        "Without a holdout, the setting that saves the most with at most "
        f"{100 * PRESETS[DEFAULT_PRESET]:.0f}% premature stops, or, where none does, the one "
        "with the fewest.",
        "",
        markdown_table(rule_summary),
        "",
        "![labels saved vs premature stops](img/advice-pareto.png)",
        "",
    ]
    text = "\n".join(lines)
    reading = ""
    if DOC.is_file():
        old = DOC.read_text(encoding="utf-8")
        if "\n## Reading\n" in old:
            reading = old[old.index("\n## Reading\n") + 1 :]
    temporary = DOC.with_name(f".{DOC.name}.tmp")
    temporary.write_text(text + ("\n" + reading if reading else ""), encoding="utf-8")
    os.replace(temporary, DOC)


# -- auto and the strategy advice against the fixed strategies -------------------------------

STRATEGY_DOC = ROOT / "docs" / "strategy-study.md"
STRATEGY_HEADING = "## auto, and the strategy advice followed"


def _run_table(cache: Path, name: str, variant: str = "auto") -> pd.DataFrame:
    from active_labeling.experiment.cache import ExperimentDir, run_summaries

    frames = []
    for folder in ("runs", variant):
        experiment = ExperimentDir(cache / folder / name)
        iterations = load_iterations(experiment, complete_only=True)
        frames.append(run_summaries(experiment, iterations))
    return pd.concat(frames, ignore_index=True)


def _verdict(row) -> str:
    if not row["wilcoxon_p"] < 0.05:
        return "="
    return "W" if row["mean_difference"] > 0 else "L"


def compare_strategies(cache: Path, datasets: list[str]) -> dict:
    """AUC of auto and of the advice-following runs beside the fixed strategies, for each
    variant of the signals auto follows; the section of docs/strategy-study.md."""
    from advice_study import AUTO_VARIANTS

    results = {v: compare_variant(cache, datasets, v) for v in AUTO_VARIANTS}
    _write_strategy_section(results)
    return results


def compare_variant(cache: Path, datasets: list[str], variant: str) -> dict:
    """One variant's comparison: per data set, auto against the fixed strategies, and the
    advice followed from each strategy against keeping it."""
    from advice_study import AUTO, STRATEGIES

    from active_labeling.experiment.report import auc_table, bootstrap_interval, paired_comparison

    rows, followed = [], []
    for name in datasets:
        runs = _run_table(cache, name, variant)
        aucs = auc_table(runs).set_index("strategy")["auc_trapezoid"]
        fixed = aucs.loc[list(STRATEGIES)]
        best = str(fixed.idxmax())
        versus = {
            b: paired_comparison(runs, b).set_index("strategy") for b in ("random", "margin", best)
        }
        auto_runs = runs[runs["strategy"] == "auto"].set_index(["seed", "half"])["auc_trapezoid"]
        best_runs = runs[runs["strategy"] == best].set_index(["seed", "half"])["auc_trapezoid"]
        gap = (auto_runs - best_runs).dropna()
        low, high = bootstrap_interval(gap.to_numpy(), random_state=0)
        rows.append(
            {
                "dataset": name,
                **{s: aucs[s] for s in STRATEGIES},
                "auto": aucs["auto"],
                "best": best,
                "gap": gap.mean(),
                "gap_low": low,
                "gap_high": high,
                "vs_random": _verdict(versus["random"].loc["auto"]),
                "vs_random_diff": versus["random"].loc["auto", "mean_difference"],
                "vs_margin": _verdict(versus["margin"].loc["auto"])
                if "auto" in versus["margin"].index
                else "=",
                "vs_margin_diff": versus["margin"].loc["auto", "mean_difference"],
            }
        )
        for label, start in AUTO:
            comparison = paired_comparison(runs, start).set_index("strategy").loc[label]
            followed.append(
                {
                    "dataset": name,
                    "start": start,
                    "diff": comparison["mean_difference"],
                    "low": comparison["difference_low"],
                    "high": comparison["difference_high"],
                    "verdict": _verdict(comparison),
                    "switched": _switch_share(cache / variant / name, label),
                }
            )
    return {"table": pd.DataFrame(rows), "followed": pd.DataFrame(followed)}


def _switch_share(root: Path, label: str) -> float:
    """Share of the runs of ``label`` in which auto moved off its start at least once."""
    logs = list((root / "runs" / label).glob("*/auto.csv"))
    moved = [pd.read_csv(path)["strategy"].nunique() > 1 for path in logs]
    return float(np.mean(moved)) if moved else float("nan")


def _variant_lines(variant: str, signals, table: pd.DataFrame, follow: pd.DataFrame) -> list:
    from advice_study import STRATEGIES

    from active_labeling.metrics.strategy_advice import DEFAULT_SIGNALS

    within = int((table["gap"] >= -0.5).sum())
    below_random = int((table["vs_random"] == "L").sum())
    versus_margin = table["vs_margin_diff"].mean()
    lines = [
        f"### auto following {', '.join(signals)}"
        + (" (the default)" if tuple(signals) == DEFAULT_SIGNALS else ""),
        "",
        f"Targets: within 0.5 points of the best fixed strategy on {within} of {len(table)} data "
        f"sets (mean gap {table['gap'].mean():+.2f}); significantly below random on "
        f"{below_random}; against margin {versus_margin:+.2f} points on average.",
        "",
        "| data set | "
        + " | ".join(STRATEGIES)
        + " | auto | best fixed | auto − best [95%] | vs random | vs margin |",
        "|---|" + "---|" * (len(STRATEGIES) + 6),
    ]
    for _, r in table.iterrows():
        cells = [f"{r[s]:.1f}" for s in STRATEGIES]
        lines.append(
            f"| {r['dataset']} | " + " | ".join(cells) + f" | {r['auto']:.1f} | {r['best']} "
            f"| {r['gap']:+.2f} [{r['gap_low']:+.2f}, {r['gap_high']:+.2f}] "
            f"| {r['vs_random_diff']:+.1f} {r['vs_random']} "
            f"| {r['vs_margin_diff']:+.1f} {r['vs_margin']} |"
        )
    mean = table[[*STRATEGIES, "auto", "gap"]].mean()
    lines += [
        "| mean | " + " | ".join(f"{mean[s]:.1f}" for s in STRATEGIES) + f" | {mean['auto']:.1f} "
        f"| | {mean['gap']:+.2f} | | |",
        "",
        "The advice followed from each fixed strategy, against keeping it (mean AUC difference",
        "in points [95%], verdict; share of runs that switched at least once):",
        "",
        "| data set | " + " | ".join(f"from {s}" for s in STRATEGIES) + " |",
        "|---|" + "---|" * len(STRATEGIES),
    ]
    for name, group in follow.groupby("dataset", sort=False):
        by = group.set_index("start")
        cells = [
            f"{by.loc[s, 'diff']:+.2f} [{by.loc[s, 'low']:+.2f}, {by.loc[s, 'high']:+.2f}] "
            f"{by.loc[s, 'verdict']} ({100 * by.loc[s, 'switched']:.0f}%)"
            for s in STRATEGIES
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    counts = follow.groupby("start")["verdict"].value_counts().unstack(fill_value=0)
    lines += [
        "| W / = / L | "
        + " | ".join(
            " / ".join(str(counts.loc[s].get(v, 0)) for v in ("W", "=", "L")) for s in STRATEGIES
        )
        + " |",
        "",
    ]
    return lines


def _write_strategy_section(results: dict) -> None:
    from advice_study import AUTO_VARIANTS

    lines = [
        STRATEGY_HEADING,
        "",
        "Written by `bench/advice_study.py` (phases `auto` and `strategies`): the runs of the",
        "advice study (11 data sets, 20 seeds, budgets up to 300 labels, all monitoring signals",
        'logged), with `strategy = "auto"` (from margin; `samplers/auto.py`) and the strategy',
        "advice followed from each fixed strategy, paired by seed with the fixed runs. AUC in",
        "percent (trapezoid over the labels); W / L: a significant Wilcoxon signed-rank",
        "difference at 5%, = a tie. The best fixed strategy is chosen in hindsight per data set",
        "among the four that ran. Targets (issue 14): within 0.5 points of it on every data set,",
        "never significantly below random, above margin on average.",
        "",
    ]
    for variant, result in results.items():
        lines += _variant_lines(
            variant, AUTO_VARIANTS[variant], result["table"], result["followed"]
        )
    section = "\n".join(lines)
    text = STRATEGY_DOC.read_text(encoding="utf-8")
    if STRATEGY_HEADING in text:
        start = text.index(STRATEGY_HEADING)
        rest = text[start + len(STRATEGY_HEADING) :]
        following = rest.find("\n## ")
        reading = rest[following + 1 :] if following >= 0 else ""
        # A hand-written reading of this section stays (a "### Reading" under it).
        own = rest[: following if following >= 0 else len(rest)]
        kept = own[own.index("\n### Reading") :] if "\n### Reading" in own else ""
        text = text[:start] + section + kept + ("\n" + reading if reading else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    temporary = STRATEGY_DOC.with_name(f".{STRATEGY_DOC.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, STRATEGY_DOC)
