"""Benchmark 4: the uncertainty samplers against modAL and scikit-activeml.

Target: at 10,000 and 100,000 rows, for least confidence, margin and entropy, the time of
``Sampler(clf, batch_size=100, prefit=True).fit().select_samples(X)`` divided by the
peer's time on the same fitted classifier and the same array is at most 1:

- modAL: ``uncertainty_sampling`` / ``margin_sampling`` / ``entropy_sampling`` called with
  the prefit classifier and ``n_instances=100``;
- scikit-activeml: ``UncertaintySampling(method=...).query(X_labeled, y_labeled, clf,
  fit_clf=False, candidates=X, batch_size=100)``, with ``clf`` a ``SklearnClassifier``
  wrapping the very same fitted LogisticRegression.

Where the definitions agree (all three scores order rows the same way in the three
libraries) the selected sets are compared too.

Run alone: ``.venv/bin/python bench/bench_uncertainty_peers.py [--quick]``.
"""

from __future__ import annotations

import numpy as np
from _common import (
    fmt_ratio,
    fmt_s,
    interleaved,
    main,
    make_problem,
    median,
    package_version,
    paired_ratio,
    pool_array,
    target,
    try_import,
)

NAME = "uncertainty_peers"
BATCH_SIZE = 100
METHODS = ("least confidence", "margin", "entropy")


def sizes(quick: bool) -> dict:
    if quick:
        return {"rows": (2_000, 10_000), "repeats": {2_000: 5, 10_000: 3}}
    return {"rows": (10_000, 100_000), "repeats": {10_000: 21, 100_000: 9}}


def _modal():
    from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

    return {
        "least confidence": uncertainty_sampling,
        "margin": margin_sampling,
        "entropy": entropy_sampling,
    }


def _skactiveml():
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.pool import UncertaintySampling

    return SklearnClassifier, UncertaintySampling


SKAL_METHOD = {
    "least confidence": "least_confident",
    "margin": "margin_sampling",
    "entropy": "entropy",
}


def contenders(method, clf, X, X_lab, y_lab, modal, skal, wrapped) -> dict:
    """The calls to time for one method on one pool: ours, the floor, and each peer."""
    from active_labeling.samplers import EntropySampler, LeastConfidenceSampler, MarginSampler

    ours_cls = {
        "least confidence": LeastConfidenceSampler,
        "margin": MarginSampler,
        "entropy": EntropySampler,
    }[method]

    def ours():
        return ours_cls(clf, batch_size=BATCH_SIZE, prefit=True).fit().select_samples(X)

    def predict_proba():
        return clf.predict_proba(X)

    out = {"ours": ours, "predict_proba": predict_proba}
    if modal is not None:

        def modal_query():
            return modal[method](clf, X, n_instances=BATCH_SIZE)[0]

        out["modAL"] = modal_query
    if skal is not None:
        UncertaintySampling = skal[1]

        def skal_query():
            strategy = UncertaintySampling(method=SKAL_METHOD[method], random_state=0)
            return strategy.query(
                X_lab, y_lab, wrapped, fit_clf=False, candidates=X, batch_size=BATCH_SIZE
            )

        out["skactiveml"] = skal_query
    return out


def run(quick: bool) -> dict:
    from sklearn.linear_model import LogisticRegression

    cfg = sizes(quick)
    modal, modal_error = try_import("modAL", _modal)
    skal, skal_error = try_import("scikit-activeml", _skactiveml)
    rows, targets, notes = [], [], []

    for n_classes in (5, 2):
        clf, X_lab, y_lab = make_problem(n_classes)
        wrapped = None
        if skal is not None:
            SklearnClassifier = skal[0]
            wrapped = SklearnClassifier(
                LogisticRegression(max_iter=1000), classes=np.arange(n_classes)
            ).fit(X_lab, y_lab)
            wrapped.estimator_ = clf  # the very same fitted model for every library
        for n_rows in cfg["rows"]:
            X = pool_array(n_rows)
            for method in METHODS:
                calls = contenders(method, clf, X, X_lab, y_lab, modal, skal, wrapped)
                times = interleaved(calls, cfg["repeats"][n_rows])
                t = {k: median(v) for k, v in times.items()}
                picked = set(calls["ours"]().tolist())
                row = [
                    n_classes,
                    f"{n_rows:,}",
                    method,
                    fmt_s(t["ours"]),
                    fmt_s(t["predict_proba"]),
                ]
                for peer, error in (("modAL", modal_error), ("skactiveml", skal_error)):
                    case = f"{method}, {n_classes} classes, {n_rows:,} rows"
                    if peer not in t:
                        row += [error, "", ""]
                        targets.append(target(f"time ours / {peer} <= 1", case, error, None))
                        continue
                    ratio = paired_ratio(times, "ours", peer)
                    theirs = np.asarray(calls[peer]()).ravel()
                    same = picked == set(theirs.tolist())
                    row += [fmt_s(t[peer]), fmt_ratio(ratio), "yes" if same else "NO"]
                    targets.append(
                        target(f"time ours / {peer} <= 1", case, fmt_ratio(ratio), ratio <= 1.0)
                    )
                rows.append(row)

    notes.append(
        f"Versions: modAL-python {package_version('modAL-python')}, scikit-activeml "
        f"{package_version('scikit-activeml')}."
    )
    for error in (modal_error, skal_error):
        if error:
            notes.append(error)
    notes.append(
        "*same set*: the 100 rows we select equal, as a set, the 100 rows the peer selects "
        "(modAL returns them unordered; ties, if any, could break differently)."
    )
    notes.append(
        "Each call includes what a user pays per query: building the sampler (ours), the "
        "peer's own input checks, predict_proba, the score and the top-k."
    )
    return {
        "title": "4. Uncertainty samplers vs modAL and scikit-activeml",
        "about": (
            "Least confidence, margin and entropy with the same fitted LogisticRegression "
            "(benchmark 1's synthetic problem, 5 classes and binary) on the same "
            f"standard-normal pool, selecting {BATCH_SIZE} rows. Median of "
            + ", ".join(f"{r} repeats at {n:,} rows" for n, r in cfg["repeats"].items())
            + ", all contenders interleaved. *predict_proba* is the classifier alone, the "
            "floor for everyone."
        ),
        "tables": [
            {
                "caption": "Time per query (medians) and ratio ours / peer (median over rounds "
                "of the ratio within a round)",
                "columns": [
                    "classes",
                    "rows",
                    "method",
                    "ours",
                    "predict_proba alone",
                    "modAL",
                    "ours / modAL",
                    "same set",
                    "skactiveml",
                    "ours / skactiveml",
                    "same set",
                ],
                "rows": rows,
            }
        ],
        "targets": targets,
        "notes": notes,
    }


if __name__ == "__main__":
    main(NAME, run)
