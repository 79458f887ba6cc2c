"""Choose the default stopping advice from the logged runs of ``bench/advice_study.py``.

Every rule of ``metrics.advice`` is replayed over a grid of its parameters, alone and in
pairs (both must say stop), on every run of every data set, without a holdout and with the
small holdout the harness logs. The default is chosen in two steps, never on one data set:

1. without a holdout: among the policies whose premature stops (more than 1 accuracy point
   below the budget's end) are at most ``MAX_PREMATURE`` of the runs of the data sets it is
   chosen on, the one that saves the most labels on average;
2. with a holdout: the same, among that policy alone, the holdout rules alone, and that
   policy *and* each holdout rule.

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
    default_policy,
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "advice-study.md"
IMG = ROOT / "docs" / "img" / "advice-pareto.png"
CALIBRATION = ROOT / "python-lib" / "active_labeling" / "metrics" / "advice_calibration.json"
MAX_PREMATURE = 0.02
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


def choose(outcomes: pd.DataFrame, datasets) -> str:
    """The policy saving the most on ``datasets`` among those within ``MAX_PREMATURE``."""
    table = quick_table(outcomes[outcomes["dataset"].isin(datasets)])
    feasible = table[table["premature"] <= MAX_PREMATURE]
    if feasible.empty:  # nothing meets it: the safest
        return str(table["premature"].idxmin())
    return str(feasible["saving"].idxmax())


def candidate_outcomes(runs, variant: str, base: tuple | None = None):
    """Outcomes of every candidate policy of ``variant`` (and which rules each holds)."""
    frames, policies = [], {}
    if variant == "no holdout":
        singles = no_holdout_grid()
        votes = vote_matrix(runs, singles, variant)
        for rule in singles:
            label = label_rules((rule,))
            policies[label] = (rule,)
            frames.append(outcomes_of(runs, votes, (rule,), variant, label))
        table = quick_table(pd.concat(frames))
        pool = table[table["premature"] <= PAIR_POOL_PREMATURE].nlargest(PAIR_POOL_SIZE, "saving")
        by_label = {label_rules((r,)): r for r in singles}
        for a, b in itertools.combinations(pool.index, 2):
            rules = (by_label[a], by_label[b])
            if rules[0].name == rules[1].name:
                continue
            label = label_rules(rules)
            policies[label] = rules
            frames.append(outcomes_of(runs, votes, rules, variant, label))
    else:
        holdout_rules = holdout_grid()
        votes = vote_matrix(runs, [*holdout_rules, *base], variant)
        candidates = [base, *[(r,) for r in holdout_rules], *[(*base, r) for r in holdout_rules]]
        for rules in candidates:
            label = label_rules(rules)
            policies[label] = rules
            frames.append(outcomes_of(runs, votes, rules, variant, label))
    return pd.concat(frames, ignore_index=True), policies


def leave_one_out(outcomes: pd.DataFrame, datasets: list[str]) -> tuple[pd.DataFrame, dict]:
    """Each data set scored with the policy chosen on the others."""
    frames, chosen = [], {}
    for held_out in datasets:
        label = choose(outcomes, [d for d in datasets if d != held_out])
        chosen[held_out] = label
        frames.append(
            outcomes[(outcomes["dataset"] == held_out) & (outcomes["policy"] == label)].assign(
                policy="chosen on the other data sets"
            )
        )
    return pd.concat(frames, ignore_index=True), chosen


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

    # 1. Without a holdout.
    plain, plain_policies = candidate_outcomes(runs, "no holdout")
    best_plain = choose(plain, datasets)
    plain_loo, plain_chosen = leave_one_out(plain, datasets)
    # 2. With a holdout, given that choice.
    held, held_policies = candidate_outcomes(runs, "holdout", base=plain_policies[best_plain])
    best_held = choose(held, datasets)
    held_loo, held_chosen = leave_one_out(held, datasets)
    print(
        f"chosen: {best_plain} | with a holdout: {best_held} ({time.perf_counter() - start:.0f} s)"
    )

    # The fast replay must agree with the library's own replay on the chosen policies.
    for label, policies, variant in (
        (best_plain, plain_policies, "no holdout"),
        (best_held, held_policies, "holdout"),
    ):
        policy = AdvicePolicy(stop_rules=policies[label])
        check = evaluate(runs[:: max(1, len(runs) // 60)], {label: policy}, (variant,))
        fast = plain if variant == "no holdout" else held
        fast = fast[fast["policy"] == label].set_index(["dataset", "strategy", "seed", "half"])
        slow = check.set_index(["dataset", "strategy", "seed", "half"])
        assert (fast.loc[slow.index, "n_stop"] == slow["n_stop"]).all(), label

    # The tables: each rule's best setting, the chosen policies per data set, and held out.
    best_by_rule = {}
    for frame, variant in ((plain, "no holdout"), (held, "holdout")):
        table = quick_table(frame)
        for label in table.index:
            rules = (plain_policies | held_policies)[label]
            if len(rules) != 1:
                continue
            name = rules[0].name
            row = table.loc[label]
            key = (variant, name)
            feasible = row["premature"] <= MAX_PREMATURE
            current = best_by_rule.get(key)
            score = (feasible, row["saving"] if feasible else -row["premature"])
            if current is None or score > current[0]:
                best_by_rule[key] = (score, label)
    rule_rows = pd.concat(
        [
            (plain if v == "no holdout" else held).query("policy == @label")
            for (v, _), (_, label) in best_by_rule.items()
        ]
    )
    rule_summary = summarize(rule_rows, by_dataset=False)
    chosen_rows = pd.concat(
        [plain[plain["policy"] == best_plain], held[held["policy"] == best_held]]
    )
    chosen_summary = summarize(chosen_rows)
    loo_summary = summarize(pd.concat([plain_loo, held_loo]), by_dataset=False)
    old = default_policy()  # the advice before this calibration, for comparison
    previous = summarize(evaluate(runs, {"advice before calibration": old}), by_dataset=False)
    all_points = summarize(pd.concat([rule_rows, chosen_rows]), by_dataset=False)
    IMG.parent.mkdir(parents=True, exist_ok=True)
    plot_pareto(all_points, IMG, "Each rule at its best setting, and the chosen advice")

    overall = chosen_summary[chosen_summary["dataset"] == "all"].set_index("variant")
    loo = loo_summary.set_index("variant")
    calibration = {
        "source": "bench/advice_study.py (docs/advice-study.md)",
        "runs": len(runs),
        "datasets": datasets,
        "max_premature": MAX_PREMATURE,
        "no_holdout": {
            "policy": [r.describe() for r in plain_policies[best_plain]],
            "all": _figures(overall.loc["no holdout"]),
            "held_out": _figures(loo.loc["no holdout"]),
        },
        "holdout": {
            "policy": [r.describe() for r in held_policies[best_held]],
            "all": _figures(overall.loc["holdout"]),
            "held_out": _figures(loo.loc["holdout"]),
        },
    }
    text = json.dumps(calibration, indent=2) + "\n"
    temporary = CALIBRATION.with_name(f".{CALIBRATION.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, CALIBRATION)
    write_doc(
        runs,
        datasets,
        rule_summary,
        chosen_summary,
        loo_summary,
        previous,
        plain_chosen,
        held_chosen,
        best_plain,
        best_held,
        time.perf_counter() - start,
    )
    print(f"wrote {DOC} and {CALIBRATION}")


def write_doc(
    runs,
    datasets,
    rule_summary,
    chosen_summary,
    loo_summary,
    previous,
    plain_chosen,
    held_chosen,
    best_plain,
    best_held,
    seconds,
) -> None:
    strategies = sorted({r.strategy for r in runs})
    per_dataset = chosen_summary[chosen_summary["dataset"] != "all"]
    targets = []
    for _, row in pd.concat(
        [chosen_summary[chosen_summary["dataset"] == "all"], loo_summary]
    ).iterrows():
        targets.append(
            f"| {row['variant']} | {row['policy'] if row['dataset'] == 'all' else 'held out'} "
            f"| {100 * row['premature_1']:.1f}% (target ≤ 2%) "
            f"| {100 * row['big_stopped']:.0f}% (≥ 70%) "
            f"| {100 * row['big_saving_ratio']:.0f}% (≥ 60%) "
            f"| {'yes' if meets_targets(row) else 'no'} |"
        )
    lines = [
        "# Advice study: the stopping advice measured against the truth",
        "",
        "Written by `bench/advice_study.py` (`python bench/advice_study.py`; the runs are",
        "cached under `bench/.cache/advice/`, the calibration is `bench/advice_calibration.py`).",
        "",
        "## Protocol",
        "",
        f"- {len(datasets)} data sets: the strategy study's 9 real ones and the two synthetic",
        "  noisy-blob tasks; standardized logistic regression; 20 seeds; strategies "
        + ", ".join(strategies)
        + ".",
        "- Per seed, half the rows are the test set; a budget of up to 300 labels (80% of the",
        "  pool on small data sets), batches of 5 (10 from 1,000 rows), stratified initial labels.",
        "- Every iteration logs the signals the advice reads, on a fixed sample of 1,000 pool",
        "  rows, and a small holdout of 100 test rows labeled aside (a team's holdout).",
        "- Each policy is replayed over every run, with only what was known at each iteration.",
        "  *Saving*: the share of the budget's labels not bought. *Premature*: the stop lost",
        "  more than 1 point of test accuracy against the budget's end. *Hindsight*: the first",
        "  iteration within 1 point of the final accuracy.",
        "- The default: without a holdout, the policy that saves the most among those with at",
        f"  most {100 * MAX_PREMATURE:.0f}% premature stops over all data sets; with a holdout,",
        "  the same among that policy, the holdout rules, and that policy and a holdout rule.",
        "  Leave-one-data-set-out measures the procedure on data it did not choose on.",
        "",
        f"{len(runs)} runs; calibration {seconds / 60:.1f} min.",
        "",
        "## The chosen advice",
        "",
        f"- Without a holdout: **{best_plain}**.",
        f"- With a holdout: **{best_held}**.",
        "",
        "| holdout | policy | premature > 1 pt | where hindsight saves ≥ 20%: stopped "
        "| its share of hindsight's saving | targets met |",
        "|---|---|---|---|---|---|",
        *targets,
        "",
        "### Over all data sets, and chosen on the others (leave one data set out)",
        "",
        markdown_table(
            pd.concat([chosen_summary[chosen_summary["dataset"] == "all"], loo_summary, previous])
        ),
        "",
        "### Per data set",
        "",
        markdown_table(per_dataset),
        "",
        "Chosen when each data set is held out (without a holdout):",
        "",
        *[f"- {d}: {label}" for d, label in plain_chosen.items()],
        "",
        "With a holdout:",
        "",
        *[f"- {d}: {label}" for d, label in held_chosen.items()],
        "",
        "## Each rule at its best setting",
        "",
        f"The setting that saves the most with at most {100 * MAX_PREMATURE:.0f}% premature",
        "stops, or, where none does, the one with the fewest.",
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


def _run_table(cache: Path, name: str) -> pd.DataFrame:
    from active_labeling.experiment.cache import ExperimentDir, run_summaries

    frames = []
    for folder in ("runs", "auto"):
        experiment = ExperimentDir(cache / folder / name)
        iterations = load_iterations(experiment, complete_only=True)
        frames.append(run_summaries(experiment, iterations))
    return pd.concat(frames, ignore_index=True)


def _verdict(row) -> str:
    if not row["wilcoxon_p"] < 0.05:
        return "="
    return "W" if row["mean_difference"] > 0 else "L"


def compare_strategies(cache: Path, datasets: list[str]) -> dict:
    """AUC of auto and of the advice-following runs beside the fixed strategies."""
    from advice_study import AUTO, STRATEGIES

    from active_labeling.experiment.report import auc_table, bootstrap_interval, paired_comparison

    rows, followed = [], []
    for name in datasets:
        runs = _run_table(cache, name)
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
                    "switched": _switch_share(cache / "auto" / name, label),
                }
            )
    table, follow = pd.DataFrame(rows), pd.DataFrame(followed)
    _write_strategy_section(table, follow)
    return {"table": table, "followed": follow}


def _switch_share(root: Path, label: str) -> float:
    """Share of the runs of ``label`` in which auto moved off its start at least once."""
    logs = list((root / "runs" / label).glob("*/auto.csv"))
    moved = [pd.read_csv(path)["strategy"].nunique() > 1 for path in logs]
    return float(np.mean(moved)) if moved else float("nan")


def _write_strategy_section(table: pd.DataFrame, follow: pd.DataFrame) -> None:
    from advice_study import STRATEGIES

    header = (
        "| data set | "
        + " | ".join(STRATEGIES)
        + " | auto | best fixed | auto − best [95%] | vs random | vs margin |"
    )
    lines = [
        STRATEGY_HEADING,
        "",
        "Written by `bench/advice_study.py` (phases `auto` and `strategies`): the runs of the",
        "advice study (11 data sets, 20 seeds, budgets up to 300 labels, all monitoring signals",
        'logged), with `strategy = "auto"` (from margin; `samplers/auto.py`) and the strategy',
        "advice followed from each fixed strategy, paired by seed with the fixed runs. AUC in",
        "percent (trapezoid over the labels); W / L: a significant Wilcoxon signed-rank",
        "difference at 5%, = a tie. The best fixed strategy is chosen in hindsight per data set",
        "among the four that ran.",
        "",
        header,
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
        "Following the strategy advice from each fixed strategy, against keeping it (mean AUC",
        "difference in points [95%], verdict; share of runs that switched at least once):",
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
