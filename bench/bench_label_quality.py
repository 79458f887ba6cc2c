"""Label quality, measured: likely label errors found, and consensus between labelers.

1. **Label errors.** On each of the strategy study's 9 real data sets, 20 seeds: half the
   rows train, half test; a careless labeler flips 10% of the training labels to another
   class drawn at random. Out-of-fold probabilities of a standardized logistic regression
   (5 folds) feed ``metrics.label_issues`` (confident learning) and, on the very same
   probabilities, cleanlab's ``find_label_issues`` (its ``confident_learning`` filter and
   its default, ``prune_by_noise_rate``). Precision and recall of the suspects against the
   flipped labels; then the test accuracy of the model trained on the noisy labels, on the
   labels after a reviewer corrected every suspect, and on the clean labels.
2. **Consensus.** Three labelers of 70%, 80% and 95% accuracy label every row of each data
   set (a wrong label is another class drawn at random); the consensus of majority vote and
   of Dawid-Skene is compared with the truth, and Dawid-Skene's estimate of each labeler's
   accuracy with theirs.

``python bench/bench_label_quality.py`` (needs the bench extra: cleanlab, statsmodels,
vega_datasets); writes ``docs/label-quality.md``.
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
sys.path.insert(0, str(ROOT / "bench"))

from strategy_study import DATASETS  # noqa: E402

DOC = ROOT / "docs" / "label-quality.md"
FLIP = 0.10
LABELERS = {"careless (70%)": 0.70, "fair (80%)": 0.80, "careful (95%)": 0.95}


def _encode(frame: pd.DataFrame):
    """Features through the project's own preprocessing (numbers, categories, text), fitted
    once on all rows without their labels, as the experiment harness does; the classes."""
    from active_labeling.models.features import build_preprocessor, infer_column_kinds

    y_names = frame["label"].astype(str).to_numpy()
    X = frame.drop(columns=["label"])
    kinds = infer_column_kinds(X, list(X.columns))
    X = build_preprocessor(kinds, dense=True, max_text_features=500).fit_transform(X)
    classes, y = np.unique(y_names, return_inverse=True)
    return np.asarray(X, dtype=float), y, classes


def _model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


def _flip(y: np.ndarray, k: int, share: float, rng) -> tuple[np.ndarray, np.ndarray]:
    flipped = rng.random(y.shape[0]) < share
    other = (y + rng.integers(1, k, y.shape[0])) % k
    return np.where(flipped, other, y), flipped


def _precision_recall(found: np.ndarray, flipped: np.ndarray) -> tuple[float, float]:
    hits = (found & flipped).sum()
    precision = hits / found.sum() if found.sum() else np.nan
    return float(precision), float(hits / flipped.sum()) if flipped.sum() else np.nan


def label_errors(name: str, frame: pd.DataFrame, seeds: int) -> list[dict]:
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from active_labeling.metrics.label_errors import label_issues, out_of_fold_proba

    X, y, classes = _encode(frame)
    k = classes.shape[0]
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        train, test = train_test_split(
            np.arange(len(y)), test_size=0.5, stratify=y, random_state=seed
        )
        noisy, flipped = _flip(y[train], k, FLIP, rng)
        model = make_pipeline(StandardScaler(), _model())
        proba = out_of_fold_proba(model, X[train], noisy, random_state=seed)
        if proba.shape[1] != k:  # a class lost all its rows to the flips: skip the seed
            continue
        ours = label_issues(noisy, proba, classes=list(range(k)))["issue"].to_numpy()
        theirs = find_label_issues(noisy, proba, filter_by="confident_learning")
        default = find_label_issues(noisy, proba)
        reviewed = np.where(ours, y[train], noisy)  # a reviewer corrects every suspect

        def accuracy(labels, train=train, test=test):
            fitted = make_pipeline(StandardScaler(), _model()).fit(X[train], labels)
            return float((fitted.predict(X[test]) == y[test]).mean())

        row = {"dataset": name, "seed": seed, "flipped": int(flipped.sum())}
        for label, found in (("ours", ours), ("cleanlab_cl", theirs), ("cleanlab", default)):
            p, r = _precision_recall(found, flipped)
            row |= {f"{label}_precision": p, f"{label}_recall": r, f"{label}_n": int(found.sum())}
        row["agreement"] = float((ours == theirs).mean())
        row |= {
            "acc_noisy": accuracy(noisy),
            "acc_reviewed": accuracy(reviewed),
            "acc_clean": accuracy(y[train]),
        }
        rows.append(row)
    return rows


def consensus(name: str, frame: pd.DataFrame, seeds: int) -> list[dict]:
    from active_labeling.metrics.consensus import dawid_skene, majority_vote

    _, y, classes = _encode(frame)
    k = classes.shape[0]
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        labels = []
        for labeler, accuracy in LABELERS.items():
            given, _ = _flip(y, k, 1 - accuracy, rng)
            labels.append(
                pd.DataFrame({"item_id": np.arange(len(y)), "annotator": labeler, "label": given})
            )
        labels = pd.concat(labels, ignore_index=True)
        vote = majority_vote(labels, classes=list(range(k)), tie="first")
        items, labelers = dawid_skene(labels, classes=list(range(k)))
        truth = pd.Series(y, index=np.arange(len(y)))
        row = {
            "dataset": name,
            "seed": seed,
            "majority": float(
                (vote.set_index("item_id")["label"].reindex(truth.index) == truth).mean()
            ),
            "dawid_skene": float(
                (items.set_index("item_id")["label"].reindex(truth.index) == truth).mean()
            ),
        }
        estimated = labelers.set_index("annotator")["accuracy"]
        for labeler in LABELERS:
            row[f"estimated {labeler}"] = float(estimated[labeler])
        rows.append(row)
    return rows


def _mean_ci(values) -> str:
    from active_labeling.experiment.report import bootstrap_interval

    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    low, high = bootstrap_interval(values, random_state=0)
    return f"{100 * values.mean():.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def write_doc(errors: pd.DataFrame, agree: pd.DataFrame, seconds: float, seeds: int) -> None:
    lines = [
        "# Label quality: likely label errors, and consensus between labelers",
        "",
        "Written by `bench/bench_label_quality.py`. Percentages: mean over seeds [95%",
        "bootstrap interval of the mean].",
        "",
        "## Likely label errors: a careless labeler flips 10% of the labels",
        "",
        f"Protocol: each data set, {seeds} seeds; half the rows train (10% of their labels",
        "flipped to another class), half test; out-of-fold probabilities of a standardized",
        "logistic regression (5 folds). *Ours*: `metrics.label_issues` (confident learning).",
        '*cleanlab CL*: cleanlab\'s `find_label_issues(filter_by="confident_learning")` on the',
        "same probabilities; *cleanlab*: its default (`prune_by_noise_rate`). Accuracy: test",
        "accuracy trained on the noisy labels, on them after a reviewer corrected every suspect",
        "of ours, and on the clean labels.",
        "",
        "| data set | ours: precision | ours: recall | cleanlab CL: precision "
        "| cleanlab CL: recall | cleanlab: precision | cleanlab: recall "
        "| same verdict as cleanlab CL | accuracy noisy | after review | clean |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, group in [*errors.groupby("dataset", sort=False), ("all", errors)]:
        cells = [
            _mean_ci(group[c])
            for c in (
                "ours_precision",
                "ours_recall",
                "cleanlab_cl_precision",
                "cleanlab_cl_recall",
                "cleanlab_precision",
                "cleanlab_recall",
                "agreement",
                "acc_noisy",
                "acc_reviewed",
                "acc_clean",
            )
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Consensus: three labelers of 70%, 80% and 95% accuracy",
        "",
        "Every row labeled by all three; a wrong label is another class at random. Accuracy of",
        "the consensus against the truth, and Dawid-Skene's estimate of each labeler.",
        "",
        "| data set | majority vote | Dawid-Skene | "
        + " | ".join(f"estimated: {n}" for n in LABELERS)
        + " |",
        "|---|---|---|" + "---|" * len(LABELERS),
    ]
    for name, group in [*agree.groupby("dataset", sort=False), ("all", agree)]:
        cells = [_mean_ci(group["majority"]), _mean_ci(group["dawid_skene"])]
        cells += [_mean_ci(group[f"estimated {n}"]) for n in LABELERS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Run time: {seconds / 60:.1f} min on 2 cores.", ""]
    text = "\n".join(lines)
    reading = ""
    if DOC.is_file():
        old = DOC.read_text(encoding="utf-8")
        if "\n## Reading\n" in old:
            reading = old[old.index("\n## Reading\n") :]
    temporary = DOC.with_name(f".{DOC.name}.tmp")
    temporary.write_text(text + reading, encoding="utf-8")
    os.replace(temporary, DOC)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    errors, agree = [], []
    for name in args.datasets:
        print(name, file=sys.stderr)
        frame = DATASETS[name][1]()
        errors += label_errors(name, frame, args.seeds)
        agree += consensus(name, frame, args.seeds)
    write_doc(pd.DataFrame(errors), pd.DataFrame(agree), time.perf_counter() - start, args.seeds)
    print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
