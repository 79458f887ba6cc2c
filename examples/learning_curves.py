"""Demo: active learning on handwritten digits (scikit-learn's digits, shipped in the package).

Simulates the labeling loop with an oracle for a few strategies over several seeds and
prints their learning curves and the normalized area under each curve (higher is better).
Run it with ``make curves``; options: ``python examples/learning_curves.py --help``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from active_labeling.experiment import simulate_loop

DEFAULT_STRATEGIES = ["random", "margin", "entropy", "kcenter", "wkmeans", "badge", "typiclust"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", nargs="+", default=DEFAULT_STRATEGIES)
    parser.add_argument("--seeds", type=int, default=3, help="repetitions per strategy")
    parser.add_argument("--initial", type=int, default=20, help="random labels to start with")
    parser.add_argument("--batch", type=int, default=20, help="labels per round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)
    X_pool, X_test, y_pool, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    print(
        f"digits: {len(X_pool)} pool rows, {len(X_test)} test rows, 10 classes; "
        f"{args.initial} random labels, then {args.rounds} rounds of {args.batch}, "
        f"{args.seeds} seeds per strategy\n"
    )

    curves: dict[str, list] = {}
    start = time.perf_counter()
    runs = [(s, seed) for s in args.strategies for seed in range(args.seeds)]
    for strategy, seed in tqdm(runs, desc="simulating", unit="run", file=sys.stderr):
        curves.setdefault(strategy, []).append(
            simulate_loop(
                strategy,
                model,
                X_pool,
                y_pool,
                X_test,
                y_test,
                initial_size=args.initial,
                batch_size=args.batch,
                n_rounds=args.rounds,
                random_state=seed,
            )
        )

    n_labeled = curves[args.strategies[0]][0].n_labeled
    width = max(len(s) for s in args.strategies) + 2
    print("Test accuracy (mean over seeds) by number of labels:")
    print("labels".rjust(8) + "".join(s.rjust(width) for s in args.strategies))
    for i, n in enumerate(n_labeled):
        row = [np.mean([c.accuracy[i] for c in curves[s]]) for s in args.strategies]
        print(f"{n:8d}" + "".join(f"{v:{width}.3f}" for v in row))

    print("\nNormalized area under the accuracy curve, % (mean ± std over seeds):")
    ranking = sorted(args.strategies, key=lambda s: -np.mean([c.auc for c in curves[s]]))
    random_auc = np.mean([c.auc for c in curves["random"]]) if "random" in curves else None
    means = {s: np.mean([c.auc for c in curves[s]]) for s in args.strategies}
    low, high = min(means.values()), max(means.values())
    for strategy in ranking:
        aucs = np.array([c.auc for c in curves[strategy]])
        gain = "" if random_auc is None else f"  ({aucs.mean() - random_auc:+.2f} vs random)"
        bar = "#" * (1 + int(30 * (means[strategy] - low) / max(high - low, 1e-9)))
        print(f"  {strategy:<{width}} {aucs.mean():6.2f} ± {aucs.std():4.2f}{gain}  {bar}")
    print(f"\n{len(runs)} runs in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
