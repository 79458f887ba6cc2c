"""Reproduce Table 1 of the tutorial: six strategies on the synthetic noisy blobs.

The published protocol (Abraham and Dreyfus-Schmidt 2021, code in the public repository
dataiku-research/sample_noise_impact_on_active_learning, ``exp/run.py``):

- data: ``make_noisy_blobs("LD")`` and ``make_noisy_blobs("HD")`` (one draw per task);
- a random half of the data is the pool, the other half the test set; a second run swaps
  the halves; 5 seeds x 2 halves = 10 runs per strategy;
- 20 initial labels, stratified (2 per class), then 19 batches of 10: the model is fitted
  and measured on the test half at 20, 30, ..., 210 labels (20 points);
- model: a random forest of 100 trees of depth at most 10;
- AUC = the mean of the 20 test accuracies x 100; NSR = the share of noisy samples among
  the 210 labeled at the last point; both as mean and standard deviation over the 10 runs;
- strategies: Random, KCenter (farthest-first on the raw features from the labeled set),
  Confidence (least confidence), IConfidence (least confidence capped by the probability of
  the true label under an oracle forest fitted on the test half), WKMeans (the 100 rows of
  highest margin score, a k-means into 10 clusters weighted by that score, the row closest to
  each centroid) and IWKMeans (the same, with every labeled row as a fixed centroid).

Every random choice is seeded from (task, seed, half) for the split and the initial labels
(shared by the strategies, so that they are compared on the same runs) and from (task,
strategy, seed, half, iteration) for the forest and the strategy. Each run is cached as JSON
under ``bench/.cache/table1/``; a rerun only computes the missing runs. The runs go to
``--jobs`` processes with one BLAS thread each.

Run: ``make reproduce`` or ``.venv/bin/python bench/seed_table1.py [--jobs 2]``; writes
``docs/reproduction.md``. A subset (``--seeds 11 --datasets LD``) prints its table instead.
Two further checks go into the report when their runs are in the cache: WKMeans and
IWKMeans with the published mini-batch k-means (``--strategies wkmeans_minibatch
iwkmeans_minibatch``), and other draws of the data (``--dataset-seed 1``).
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process, set before NumPy loads (workers inherit it).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.ensemble import RandomForestClassifier  # noqa: E402
from sklearn.metrics import accuracy_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from tqdm import tqdm  # noqa: E402

from active_labeling.experiment.oracle import InformedConfidenceSampler, fit_oracle  # noqa: E402
from active_labeling.experiment.synthetic import NOISY_BLOBS, make_noisy_blobs  # noqa: E402
from active_labeling.samplers.clustering import IWKMeansSampler, WKMeansSampler  # noqa: E402
from active_labeling.samplers.kcenter import KCenterGreedySampler  # noqa: E402
from active_labeling.samplers.random import RandomSampler  # noqa: E402
from active_labeling.samplers.scores import margin  # noqa: E402
from active_labeling.samplers.uncertainty import LeastConfidenceSampler  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "bench" / ".cache" / "table1"
DOC = ROOT / "docs" / "reproduction.md"

DATASETS = ("LD", "HD")
STRATEGIES = ("random", "kcenter", "confidence", "iconfidence", "wkmeans", "iwkmeans")
LABELS = {
    "random": "Random",
    "kcenter": "KCenter",
    "confidence": "Confidence",
    "iconfidence": "IConfidence",
    "wkmeans": "WKMeans",
    "iwkmeans": "IWKMeans",
    "wkmeans_minibatch": "WKMeans, published k-means",
    "iwkmeans_minibatch": "IWKMeans, published k-means",
}
#: Not in Table 1's run: WKMeans and IWKMeans with the published mini-batch k-means instead
#: of the library's (``--strategies wkmeans_minibatch iwkmeans_minibatch``), to measure what
#: the k-means variant changes. Reported when their runs are in the cache.
EXTRA_STRATEGIES = ("wkmeans_minibatch", "iwkmeans_minibatch")
SEEDS = (11, 22, 33, 44, 55)  # the published seed names
HALVES = ("A", "B")

#: Seed of the one draw of each task (the published runs also share one draw per task).
DATASET_SEED = {"LD": 0, "HD": 0}
INITIAL_SIZE = 20
BATCH_SIZE = 10
N_BATCHES = 19
BETA = 10  # WKMeans candidates: beta x batch = 100, as n_classes x batch in the paper
FOREST = {"n_estimators": 100, "max_depth": 10}

#: Table 1 of the tutorial, in the order of STRATEGIES: (mean, std) over 10 runs.
PUBLISHED = {
    ("LD", "auc"): [(38.6, 1.5), (47.9, 0.5), (26.7, 2.5), (24.5, 1.4), (44.0, 1.2), (48.1, 1.0)],
    ("LD", "nsr"): [(50.3, 4.1), (42.4, 2.0), (38.9, 6.5), (10.1, 4.6), (43.5, 2.6), (39.3, 1.8)],
    ("HD", "auc"): [(50.7, 2.1), (61.7, 1.1), (58.0, 1.2), (55.0, 1.5), (60.6, 0.9), (63.2, 0.6)],
    ("HD", "nsr"): [(35.0, 3.0), (24.5, 1.5), (25.6, 1.5), (3.2, 1.1), (33.4, 1.5), (26.9, 1.8)],
}

#: What a cached run was computed with; a run cached under other settings is recomputed.
PROTOCOL = {
    "version": 1,
    "dataset_seed": DATASET_SEED,
    "initial_size": INITIAL_SIZE,
    "batch_size": BATCH_SIZE,
    "n_batches": N_BATCHES,
    "beta": BETA,
    "forest": FOREST,
}

#: What we know of a difference of more than 2 AUC points (or 3 NSR points) from the
#: published figure; the report says "Not explained." for any other.
#: Fields in braces are filled in from the run's tables (see ``render``).
AUC_NOTES = {
    ("LD", "iwkmeans"): (
        "our IWKMeans trails KCenter on LD ({iwkmeans_auc:.1f} against {kcenter_auc:.1f}) "
        "where the published table has them level (48.1 and 47.9), and it does on every draw "
        "of the data we tried (IWKMeans {iwkmeans_auc_draws}; KCenter {kcenter_auc_draws}). "
        "Part of the gap is the k-means: the published mini-batch k-means, ported in this "
        "script, changes IWKMeans by {iwkmeans_minibatch_gain} AUC points on the same runs "
        "(section below). The rest we cannot place: the published data file cannot be "
        "regenerated from the repository (its generating script is not there), and the draw "
        "of the data alone moves this AUC by about 2 points."
    ),
    ("LD", "wkmeans"): (
        "the published mini-batch k-means, ported in this script, changes WKMeans by "
        "{wkmeans_minibatch_gain} AUC points on the same runs (section below); the draw of "
        "the data moves the exploring strategies by about 2 points."
    ),
}
NSR_NOTES = {
    ("LD", "kcenter"): (
        "lower on every draw we tried ({kcenter_nsr_draws}). Farthest-first traversal labels "
        "about one point per Gaussian, so the noisy share of its picks tends to the share of "
        "shared Gaussians among all Gaussians (50 of 150, 33 %), plus the initial labels; the "
        "published 42.4 % implies more picks inside the shared Gaussians. The published run "
        "script has no KCenter entry to compare with, and we do not know the cause."
    ),
    ("LD", "iconfidence"): (
        "{same_class_pairs} of the {pairs} shared Gaussians of this draw have both halves "
        "dealt to the same class (the published dealing allows it); their points count as "
        "noisy, yet no model hesitates on them, so the oracle does not cap them and "
        "IConfidence labels them like clean points. Counting as noisy only the points of "
        "shared Gaussians that hold two classes gives {iconfidence_nsr_ambiguous:.1f} %, "
        "close to the published 10.1 %: the published data may have kept such pairs apart."
    ),
    ("HD", "iconfidence"): (
        "{same_class_pairs} of the {pairs} shared Gaussians have both halves in one class "
        "(see LD IConfidence); counting only the others gives "
        "{iconfidence_nsr_ambiguous:.1f} %."
    ),
    ("HD", "wkmeans"): (
        "with the published mini-batch k-means WKMeans labels {wkmeans_minibatch_nsr:.1f} % "
        "noisy points on the same runs, so the k-means variant is not the cause; the "
        "published std is 1.5, ours {wkmeans_nsr_std:.1f}, over 10 runs each."
    ),
}
IMPLEMENTATION_NOTES = [
    "Where this reproduction departs from the published code, and why:",
    "",
    "- **k-means of WKMeans and IWKMeans.** The library runs Lloyd's full-batch k-means,",
    "  seeded by uncertainty-weighted k-means++ (one trial per centre), and takes centre by",
    "  centre the closest candidate not yet taken. The published code runs scikit-learn",
    "  0.24's mini-batch k-means (and, for IWKMeans, cardinal's copy of it with fixed centres):",
    "  unweighted greedy k-means++ seeding, mini-batches of 100 rows drawn with replacement",
    "  from the 100 candidates, random reassignment of starved centres, and an optimal",
    "  assignment of candidates to centres (scikit-learn 0.24 was current then). The table",
    "  uses the library's samplers; the section above measures the published variant,",
    "  ported in this script. beta = 10: the published code passes the number of classes",
    "  (10) as beta, so 100 candidates.",
    "- **IConfidence.** The oracle caps least confidence with the probability it gives to the",
    "  *true* label, as in the first published `exp/run.py` and in the tutorial's definition",
    "  of noisy samples (a low probability of their own class under a good enough classifier).",
    "  A later revision of that script passes the oracle's own least-confidence score",
    "  (1 - max p) instead, which would cap clean samples near 0 and favour noisy ones, the",
    "  opposite of the published NSR of 10.1 %; we read it as a slip.",
    "- **Ties.** Forest probabilities take few distinct values (most leaves are pure), so many",
    "  candidates tie. The library ranks ties by pool position (the pool is in random order),",
    "  the published code by NumPy's `argsort` order; neither favours a region of the data.",
    "- **Seeds.** Every forest and every strategy is seeded (the published forests are not),",
    "  so a rerun gives the same table.",
    "- **NSR** is measured on the 210 labels of the last model, the 20 initial ones included.",
    "  The published metric script is not in the repository; its table code divides the",
    "  count at the last point by 210.",
]


# ---------------------------------------------------------------------------------------
# Seeds and data


def derive_seed(*key) -> int:
    """A 32-bit seed from a key of strings and ints, the same in every process and run."""
    words = [zlib.crc32(str(part).encode()) for part in key]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


@cache
def dataset(kind: str):
    return make_noisy_blobs(kind, random_state=DATASET_SEED[kind])


@cache
def ambiguous(kind: str) -> np.ndarray:
    """The noisy points whose shared Gaussian really holds two classes.

    The published dealing of blobs to classes may give both halves of a shared Gaussian the
    same class; those points are marked noisy but no model hesitates on them.
    """
    _, y, noisy, blobs = make_noisy_blobs(kind, random_state=DATASET_SEED[kind], return_blobs=True)
    gaussian = np.where(
        blobs < NOISY_BLOBS[kind].n_gaussians, blobs, blobs - NOISY_BLOBS[kind].n_gaussians
    )
    mixed = np.zeros(noisy.shape[0], dtype=bool)
    for g in np.unique(gaussian[noisy]):
        members = noisy & (gaussian == g)
        mixed[members] = np.unique(y[members]).shape[0] > 1
    return mixed


def use_dataset_seed(seed: int) -> None:
    """Run on another draw of the tasks (to see how much the draw matters)."""
    for kind in DATASETS:
        DATASET_SEED[kind] = seed
    dataset.cache_clear()
    ambiguous.cache_clear()


def halves(kind: str, seed: int, half: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, test) positions: a random half each; half "B" swaps them."""
    order = np.random.default_rng(derive_seed(kind, "split", seed)).permutation(n)
    first, second = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    return (first, second) if half == "A" else (second, first)


def initial_labels(y_pool: np.ndarray, kind: str, seed: int, half: str) -> np.ndarray:
    """Positions in the pool of the first labels, stratified by class (2 per class)."""
    picked, _ = train_test_split(
        np.arange(y_pool.shape[0]),
        train_size=INITIAL_SIZE,
        stratify=y_pool,
        random_state=derive_seed(kind, "initial", seed, half),
    )
    return np.sort(picked)


def forest(random_state: int) -> RandomForestClassifier:
    return RandomForestClassifier(**FOREST, n_jobs=1, random_state=random_state)


# ---------------------------------------------------------------------------------------
# The published k-means of WKMeans and IWKMeans, for comparison with the library's


def published_two_step(model, X_lab, X_unl, seed: int, incremental: bool) -> np.ndarray:
    """WKMeans / IWKMeans as the published code runs them (cardinal, scikit-learn 0.24).

    The 100 rows of highest margin score, then a *mini-batch* k-means weighted by that score
    (mini-batches of 100 rows drawn with replacement, k-means++ seeding without weights and
    with 2 + log(k) trials per centre, count-based centre updates, random reassignment of
    starved centres, stop after 10 mini-batches without improvement), the labeled rows as
    fixed centres for IWKMeans; one row per free centre by an optimal assignment. The
    library's samplers run Lloyd's full-batch k-means instead, seeded by uncertainty-weighted
    k-means++, and pick the closest free row centre by centre.
    """
    scores = margin(model.predict_proba(X_unl))
    candidates = np.argsort(scores, kind="stable")[-BETA * BATCH_SIZE :]
    X, w = X_unl[candidates], scores[candidates]
    fixed = X_lab if incremental else X_lab[:0]
    centers = minibatch_kmeans(X, w, BATCH_SIZE, fixed, np.random.default_rng(seed))
    return candidates[linear_sum_assignment(cdist(X, centers))[0]]


def minibatch_kmeans(X, w, k, fixed, rng, batch=100, max_iter=100, patience=10) -> np.ndarray:
    """The free centres of a weighted mini-batch k-means whose ``fixed`` centres never move."""
    n, n_fixed = X.shape[0], fixed.shape[0]
    free = kmeans_plus_plus(X, k, fixed, rng)
    counts = np.zeros(k)
    init = rng.integers(0, n, min(3 * batch, n))
    minibatch_step(X[init], w[init], free, fixed, counts, rng, reassign=False)
    ewa = best = None
    stale = 0
    for step in range(max_iter * int(np.ceil(n / batch))):
        rows = rng.integers(0, n, batch)
        # The fixed centres count 0, so a starved free centre is reassigned every 10 steps.
        reassign = (step + 1) % (10 + int(counts.min() if n_fixed == 0 else 0)) == 0
        inertia = minibatch_step(X[rows], w[rows], free, fixed, counts, rng, reassign) / batch
        alpha = min(1.0, 2.0 * batch / (n + 1))
        ewa = inertia if ewa is None else ewa * (1 - alpha) + inertia * alpha
        if best is None or ewa < best:
            best, stale = ewa, 0
        else:
            stale += 1
            if stale >= patience:
                break
    return free


def kmeans_plus_plus(X, k, fixed, rng) -> np.ndarray:
    """Greedy k-means++ seeding (unweighted), the fixed centres counting as chosen."""
    n = X.shape[0]
    trials = 2 + int(np.log(k + fixed.shape[0]))
    centers = []
    if fixed.shape[0]:
        closest = cdist(fixed, X, "sqeuclidean").min(axis=0)
    else:
        first = X[rng.integers(n)]
        centers.append(first)
        closest = ((X - first) ** 2).sum(axis=1)
    potential = closest.sum()
    while len(centers) < k:
        picks = np.searchsorted(np.cumsum(closest), rng.random(trials) * potential)
        picks = np.minimum(picks, n - 1)
        d2 = np.minimum(closest, cdist(X[picks], X, "sqeuclidean"))
        best = int(np.argmin(d2.sum(axis=1)))
        potential, closest = d2[best].sum(), d2[best]
        centers.append(X[picks[best]])
    return np.array(centers, dtype=float)


def minibatch_step(X, w, free, fixed, counts, rng, reassign: bool) -> float:
    """One mini-batch update of the free centres, in place; returns the batch inertia."""
    n_fixed = fixed.shape[0]
    d2 = cdist(X, np.vstack([fixed, free]), "sqeuclidean")
    nearest = d2.argmin(axis=1)
    inertia = float((w * d2[np.arange(X.shape[0]), nearest]).sum())
    if reassign:
        starved = counts < 0.01 * counts.max()
        if starved.sum() > X.shape[0] // 2:
            starved[np.argsort(counts)[X.shape[0] // 2 :]] = False
        if starved.any():
            free[starved] = X[rng.choice(X.shape[0], size=int(starved.sum()), replace=False)]
            counts[starved] = 0.0 if n_fixed else counts[~starved].min()
    for j in range(free.shape[0]):
        members = nearest == n_fixed + j
        total = w[members].sum()
        if total > 0:
            free[j] = (free[j] * counts[j] + w[members] @ X[members]) / (counts[j] + total)
            counts[j] += total
    return inertia


# ---------------------------------------------------------------------------------------
# One run


def select_batch(strategy, model, X_lab, y_lab, X_unl, y_unl, oracle, seed) -> np.ndarray:
    """Positions in the unlabeled rows of the next batch, with the library's samplers."""
    if strategy == "random":
        return RandomSampler(BATCH_SIZE, random_state=seed).select_samples(X_unl)
    if strategy == "kcenter":
        return KCenterGreedySampler(BATCH_SIZE).fit(X_lab).select_samples(X_unl)
    if strategy == "confidence":
        sampler = LeastConfidenceSampler(model, BATCH_SIZE, prefit=True).fit()
        return sampler.select_samples(X_unl)
    if strategy == "iconfidence":
        sampler = InformedConfidenceSampler(model, BATCH_SIZE, oracle=oracle, prefit=True)
        return sampler.fit().select_samples(X_unl, y_unl)
    if strategy == "wkmeans":
        sampler = WKMeansSampler(
            model, BATCH_SIZE, beta=BETA, uncertainty="margin", prefit=True, random_state=seed
        )
        return sampler.fit().select_samples(X_unl)
    if strategy == "iwkmeans":
        sampler = IWKMeansSampler(
            model, BATCH_SIZE, beta=BETA, uncertainty="margin", prefit=True, random_state=seed
        )
        return sampler.fit(X_lab).select_samples(X_unl)
    if strategy in EXTRA_STRATEGIES:
        return published_two_step(model, X_lab, X_unl, seed, strategy.startswith("i"))
    raise ValueError(f"unknown strategy {strategy!r}")


def run_one(kind: str, strategy: str, seed: int, half: str) -> dict:
    """One run of the protocol: 20 accuracies on the test half, the final NSR, the picks."""
    started, cpu_started = time.perf_counter(), time.process_time()
    X, y, noisy = dataset(kind)
    pool, test = halves(kind, seed, half, X.shape[0])
    X_pool, y_pool, X_test, y_test = X[pool], y[pool], X[test], y[test]
    labeled = np.zeros(pool.shape[0], dtype=bool)
    initial = initial_labels(y_pool, kind, seed, half)
    labeled[initial] = True
    oracle = None
    if strategy == "iconfidence":
        oracle = fit_oracle(
            forest(0), X_test, y_test, random_state=derive_seed(kind, "oracle", seed, half)
        )
    accuracy, batches = [], []
    for iteration in range(N_BATCHES + 1):
        rows = np.flatnonzero(labeled)
        model = forest(derive_seed(kind, strategy, seed, half, iteration, "model"))
        model.fit(X_pool[rows], y_pool[rows])
        accuracy.append(float(accuracy_score(y_test, model.predict(X_test))))
        if iteration == N_BATCHES:
            break
        unlabeled = np.flatnonzero(~labeled)
        picked = unlabeled[
            select_batch(
                strategy,
                model,
                X_pool[rows],
                y_pool[rows],
                X_pool[unlabeled],
                y_pool[unlabeled],
                oracle,
                derive_seed(kind, strategy, seed, half, iteration, "sampler"),
            )
        ]
        if picked.shape[0] != BATCH_SIZE or labeled[picked].any():
            raise RuntimeError(f"{strategy} returned a bad batch at iteration {iteration}")
        labeled[picked] = True
        batches.append(pool[picked].tolist())
    final = pool[labeled]
    return {
        "dataset": kind,
        "strategy": strategy,
        "seed": seed,
        "half": half,
        "protocol": PROTOCOL,
        "n_labeled": [INITIAL_SIZE + BATCH_SIZE * i for i in range(N_BATCHES + 1)],
        "accuracy": accuracy,
        "auc": 100 * float(np.mean(accuracy)),
        "nsr": 100 * float(noisy[final].mean()),
        "initial": pool[initial].tolist(),
        "batches": batches,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
    }


# ---------------------------------------------------------------------------------------
# Cache and parallel runs


def cache_path(cache_dir: Path, kind: str, strategy: str, seed: int, half: str) -> Path:
    return cache_dir / f"{kind}-draw{DATASET_SEED[kind]}" / strategy / f"seed-{seed}{half}.json"


def load_cached(path: Path) -> dict | None:
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return result if result.get("protocol") == json.loads(json.dumps(PROTOCOL)) else None


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        f.write(text)
    publish(f.name, path)


def publish(tmp: str, path: Path) -> None:
    """Move a finished temporary file into place, readable like any other file."""
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _worker(task: tuple, cache_dir: str, dataset_seed: dict) -> dict:
    if dataset_seed != DATASET_SEED:  # a spawned worker starts from the module's defaults
        DATASET_SEED.update(dataset_seed)
        dataset.cache_clear()
    result = run_one(*task)
    write_atomic(cache_path(Path(cache_dir), *task), json.dumps(result))
    return result


def run_all(tasks: list[tuple], cache_dir: Path, jobs: int, fresh: bool = False):
    """Every task's result, from the cache when there (unless ``fresh``), else computed on
    ``jobs`` processes; and how many were computed."""
    results, todo = {}, []
    for task in tasks:
        cached = None if fresh else load_cached(cache_path(cache_dir, *task))
        if cached is None:
            todo.append(task)
        else:
            results[task] = cached
    # Longest runs first (IWKMeans, HD), so that the two workers finish together.
    todo.sort(key=lambda t: (t[0] != "HD", t[1] not in ("iwkmeans", "iconfidence")))
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), desc="runs", unit="run")
    if jobs <= 1:
        for task in todo:
            results[task] = _worker(task, str(cache_dir), DATASET_SEED)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {
                pool.submit(_worker, task, str(cache_dir), DATASET_SEED): task for task in todo
            }
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    bar.close()
    return [results[task] for task in tasks], len(todo)


# ---------------------------------------------------------------------------------------
# Report


def summarize(results: list[dict]) -> dict:
    """(dataset, strategy) -> {"auc": (mean, std), "nsr": (mean, std), "n": runs}."""
    table = {}
    for kind in DATASETS:
        for strategy in STRATEGIES + EXTRA_STRATEGIES:
            runs = [r for r in results if r["dataset"] == kind and r["strategy"] == strategy]
            if not runs:
                continue
            row = {"n": len(runs)}
            for metric in ("auc", "nsr", "nsr_ambiguous"):
                values = np.array(
                    [r[metric] if metric in r else metric_of(r, metric) for r in runs]
                )
                std = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
                row[metric] = (float(values.mean()), std)
            table[kind, strategy] = row
    return table


def metric_of(run: dict, metric: str) -> float:
    """A measure recomputed from a run's cached selections."""
    if metric != "nsr_ambiguous":
        raise KeyError(metric)
    labeled = np.concatenate([run["initial"], *run["batches"]]).astype(int)
    return 100 * float(ambiguous(run["dataset"])[labeled].mean())


def published(kind: str, metric: str, strategy: str) -> tuple[float, float]:
    """The published (mean, std); an extra strategy is compared with the one it varies."""
    base = strategy.removesuffix("_minibatch")
    return PUBLISHED[kind, metric][STRATEGIES.index(base)]


def rank_correlation(table: dict, kind: str, metric: str) -> float:
    ours = [table[kind, s][metric][0] for s in STRATEGIES]
    return float(spearmanr(ours, [m for m, _ in PUBLISHED[kind, metric]]).statistic)


def markdown_table(table: dict, strategies=STRATEGIES) -> list[str]:
    lines = [
        "| task | strategy | AUC ours | AUC published | diff | NSR ours | NSR published | diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in DATASETS:
        for strategy in strategies:
            if (kind, strategy) not in table:
                continue
            cells = [kind, LABELS[strategy]]
            for metric in ("auc", "nsr"):
                mean, std = table[kind, strategy][metric]
                pub_mean, pub_std = published(kind, metric, strategy)
                cells += [f"{mean:.1f} ± {std:.1f}", f"{pub_mean:.1f} ± {pub_std:.1f}"]
                cells.append(f"{mean - pub_mean:+.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def paired_difference(results: list[dict], kind: str, a: str, b: str, metric: str = "auc"):
    """Mean and standard error of ``a - b`` over the runs both have (same split, same start)."""
    runs = {
        (r["strategy"], r["seed"], r["half"]): r[metric] for r in results if r["dataset"] == kind
    }
    diffs = np.array(
        [
            runs[a, seed, half] - runs[b, seed, half]
            for seed in SEEDS
            for half in HALVES
            if (a, seed, half) in runs and (b, seed, half) in runs
        ]
    )
    if diffs.size < 2:
        return None
    return float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(diffs.size)), diffs.size


def swapped_pairs(table: dict) -> list[str]:
    """The pairs of strategies whose AUC order differs from the published one."""
    lines = []
    for kind in DATASETS:
        ours = {s: table[kind, s]["auc"][0] for s in STRATEGIES}
        pub = {s: published(kind, "auc", s)[0] for s in STRATEGIES}
        for i, a in enumerate(STRATEGIES):
            for b in STRATEGIES[i + 1 :]:
                if (ours[a] - ours[b]) * (pub[a] - pub[b]) < 0:
                    lines.append(
                        f"- AUC order swapped on {kind}: {LABELS[a]} and {LABELS[b]}, "
                        f"{ours[a]:.1f} and {ours[b]:.1f} here, {pub[a]:.1f} and {pub[b]:.1f} "
                        "published."
                    )
    return lines


def flagged(table: dict, metric: str, threshold: float) -> list[tuple[str, str, float]]:
    out = []
    for kind in DATASETS:
        for strategy in STRATEGIES:
            diff = table[kind, strategy][metric][0] - published(kind, metric, strategy)[0]
            if abs(diff) > threshold:
                out.append((kind, strategy, diff))
    return out


def write_doc(table: dict, results: list[dict], extras: dict, timing: dict, path: Path) -> None:
    """The Markdown report: our Table 1 beside the published one, and how it was made."""
    rho = {(k, m): rank_correlation(table, k, m) for k in DATASETS for m in ("auc", "nsr")}
    n_within = len(DATASETS) * len(STRATEGIES) - len(flagged(table, "auc", 2.0))
    swapped = dict(table)
    for kind in DATASETS:
        for strategy in EXTRA_STRATEGIES:
            if (kind, strategy) in table:
                swapped[kind, strategy.removesuffix("_minibatch")] = table[kind, strategy]
    n_within_variant = len(DATASETS) * len(STRATEGIES) - len(flagged(swapped, "auc", 2.0))
    main_runs = [r for r in results if r["strategy"] in STRATEGIES]
    cpu = np.array([r.get("cpu_seconds", np.nan) for r in main_runs])
    lines = [
        "# Reproduction of the tutorial's Table 1",
        "",
        "Written by `bench/seed_table1.py` (`make reproduce`); do not edit by hand.",
        "",
        "Six query strategies on the synthetic noisy blobs of Abraham and Dreyfus-Schmidt 2021",
        '("Sample Noise Impact on Active Learning"; the data are described in',
        "[synthetic-data.md](synthetic-data.md)), run with the published protocol and this",
        "library's samplers. AUC: the mean of the 20 test accuracies (20 to 210 labels) x 100.",
        "NSR: the share of noisy samples among the 210 labels at the end, in percent. Mean ±",
        "standard deviation over 10 runs (5 seeds x 2 swapped halves).",
        "",
        *markdown_table(table),
        "",
        f"**{n_within} of {len(DATASETS) * len(STRATEGIES)}** AUCs are within 2 points of the "
        "published ones"
        + (
            f"; {n_within_variant} of {len(DATASETS) * len(STRATEGIES)} with the published "
            "k-means in WKMeans and IWKMeans (see below)."
            if swapped != table
            else "."
        ),
        "",
        "Spearman rank correlation of our ordering of the six strategies with the published one:",
        "",
        "| task | AUC | NSR |",
        "|---|---|---|",
        *(f"| {k} | {rho[k, 'auc']:.2f} | {rho[k, 'nsr']:.2f} |" for k in DATASETS),
        "",
        *swapped_pairs(table),
        "",
        "## Differences of more than 2 AUC points",
        "",
    ]
    auc_flags = flagged(table, "auc", 2.0)
    lines += ["None."] if not auc_flags else []
    for kind, strategy, diff in auc_flags:
        note = render(
            AUC_NOTES.get((kind, strategy), "Not explained."), table, results, extras, kind
        )
        lines.append(f"- **{kind} {LABELS[strategy]} ({diff:+.1f})**: {note}")
    lines += ["", "## Differences of more than 3 NSR points", ""]
    nsr_flags = flagged(table, "nsr", 3.0)
    lines += ["None."] if not nsr_flags else []
    for kind, strategy, diff in nsr_flags:
        note = render(
            NSR_NOTES.get((kind, strategy), "Not explained."), table, results, extras, kind
        )
        lines.append(f"- **{kind} {LABELS[strategy]} ({diff:+.1f})**: {note}")
    lines += ["", *extra_sections(table, results, extras), *protocol_section()]
    lines += [
        "## Run",
        "",
        "```sh",
        "make reproduce            # or: .venv/bin/python bench/seed_table1.py --jobs 2",
        "```",
        "",
        f"- {len(main_runs)} runs on {timing['jobs']} worker processes with one thread each;",
        f"  this invocation computed {timing['computed']} of them in {timing['wall']:.0f} s, "
        "the rest came",
        "  from the cache (`bench/.cache/table1/`).",
        f"- CPU: {np.nanmedian(cpu):.1f} s per run (median), {np.nansum(cpu) / 60:.1f} "
        f"CPU-minutes for the {len(main_runs)}.",
        f"- Last run with all 120 computed: {timing.get('last_full', 'none recorded')}.",
        "- Target, the 120 runs in under 15 minutes on 2 cores: " + verdict(cpu, timing),
        f"- Machine: {os.cpu_count()} cores shared with other work; load average (1, 5, 15 min)",
        f"  {timing['load_start']} at the start of this invocation, {timing['load_end']} at "
        "its end.",
        f"- Python {platform.python_version()}, scikit-learn {sklearn.__version__}, "
        f"NumPy {np.__version__}; {timing['date']}.",
        "",
    ]
    write_atomic(path, "\n".join(lines))


def verdict(cpu: np.ndarray, timing: dict) -> str:
    """Whether the 15-minute target is met, on idle cores (CPU time) and as measured."""
    idle = np.nansum(cpu) / 2
    out = f"{'met' if idle < 900 else 'missed'} on idle cores ({idle / 60:.1f} min of CPU per core)"
    wall = timing.get("last_full_wall")
    if wall is not None:
        out += (
            f"; {'met' if wall < 900 else 'missed'} in the wall time of the last full run "
            f"({wall / 60:.1f} min, on cores shared with the load above)"
        )
    return out + "."


def render(note: str, table: dict, results: list[dict], extras: dict, kind: str) -> str:
    """A note with its figures filled in from this run's tables (``{name}`` fields)."""
    fields = {}
    for strategy in STRATEGIES + EXTRA_STRATEGIES:
        for metric in ("auc", "nsr", "nsr_ambiguous"):
            if (kind, strategy) in table:
                fields[f"{strategy}_{metric}"] = table[kind, strategy][metric][0]
                fields[f"{strategy}_{metric}_std"] = table[kind, strategy][metric][1]
    for strategy in EXTRA_STRATEGIES:
        base = strategy.removesuffix("_minibatch")
        diff = paired_difference(results, kind, strategy, base)
        fields[f"{strategy}_gain"] = f"{diff[0]:+.1f} ± {diff[1]:.1f}" if diff else "(not run)"
    draws = {DATASET_SEED[kind]: table, **extras}
    for strategy in STRATEGIES:
        for metric in ("auc", "nsr"):
            values = [
                f"{draws[d][kind, strategy][metric][0]:.1f}"
                for d in sorted(draws)
                if (kind, strategy) in draws[d] and draws[d][kind, strategy]["n"] == 10
            ]
            fields[f"{strategy}_{metric}_draws"] = ", ".join(values)
    noisy = dataset(kind)[2]
    pairs = NOISY_BLOBS[kind].n_noisy_blobs // 2
    fields["pairs"] = pairs
    fields["same_class_pairs"] = round(pairs * (1 - ambiguous(kind).sum() / noisy.sum()))
    try:
        return note.format(**fields)
    except (KeyError, IndexError, ValueError):
        return note


def extra_sections(table: dict, results: list[dict], extras: dict) -> list[str]:
    """The k-means variant and the other draws of the data, from whatever the cache holds."""
    lines = []
    variant = [s for s in EXTRA_STRATEGIES if all((k, s) in table for k in DATASETS)]
    if variant:
        lines += [
            "## The library's k-means or the published one",
            "",
            "WKMeans and IWKMeans with the published mini-batch k-means (a port in this",
            "script, `published_two_step`) instead of the library's full-batch one, on the same",
            "runs (`--strategies wkmeans_minibatch iwkmeans_minibatch`):",
            "",
            *markdown_table(table, variant),
            "",
            "Paired difference, library minus published k-means, mean ± standard error over",
            "the 10 runs:",
            "",
        ]
        for kind in DATASETS:
            for strategy in variant:
                base = strategy.removesuffix("_minibatch")
                diff = paired_difference(results, kind, base, strategy)
                if diff:
                    lines.append(
                        f"- {kind} {LABELS[base]}: {diff[0]:+.1f} ± {diff[1]:.1f} AUC points"
                    )
        lines.append("")
    if extras:
        lines += [
            "## Other draws of the data",
            "",
            "The published runs share one draw of each task, and so do ours; how much does the",
            "draw matter? The same protocol on other draws (`--dataset-seed N`), AUC and NSR:",
            "",
            "| task | strategy | "
            + " | ".join(f"draw {d}" for d in sorted([DATASET_SEED["LD"], *extras]))
            + " |",
            "|---|---|" + "---|" * (len(extras) + 1),
        ]
        draws = {DATASET_SEED["LD"]: table, **extras}
        for kind in DATASETS:
            for strategy in STRATEGIES:
                cells = []
                for row in (draws[d].get((kind, strategy)) for d in sorted(draws)):
                    complete = row is not None and row["n"] == len(SEEDS) * len(HALVES)
                    cells.append(f"{row['auc'][0]:.1f} / {row['nsr'][0]:.1f}" if complete else "")
                if sum(map(bool, cells)) > 1:
                    lines.append(f"| {kind} | {LABELS[strategy]} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def protocol_section() -> list[str]:
    return [
        "## Protocol",
        "",
        "As in the published `exp/run.py` and `exp/noisy_ld.py`, with this library's pieces:",
        "",
        f"- data: `make_noisy_blobs(kind, random_state={DATASET_SEED['LD']})`, one draw per task;",
        "- split: a random half is the pool, the other the test set; the second run of a seed",
        "  swaps them; the split and the 20 initial labels (`train_test_split(...,",
        "  stratify=y_pool)`: 2 per class) depend on (task, seed, half) only, so every strategy",
        "  starts from the same labels;",
        f"- model: `RandomForestClassifier(n_estimators={FOREST['n_estimators']}, "
        f"max_depth={FOREST['max_depth']})`, refitted",
        "  at each of the 20 points with a seed from (task, strategy, seed, half, iteration)",
        "  (the published forests are unseeded); accuracy on the whole test half;",
        "- Random: `RandomSampler`; KCenter: `KCenterGreedySampler` fitted on the labeled rows",
        "  (Euclidean farthest-first, as cardinal's `KCenterGreedy`); Confidence:",
        "  `LeastConfidenceSampler`; IConfidence:",
        "  `active_labeling.experiment.oracle.InformedConfidenceSampler` with an oracle forest",
        "  (same parameters) fitted on the test half; WKMeans: `WKMeansSampler(beta=10,",
        '  uncertainty="margin")`; IWKMeans: `IWKMeansSampler(beta=10, uncertainty="margin")`.',
        "",
        *IMPLEMENTATION_NOTES,
        "",
    ]


def plot_data(path: Path, kind: str = "LD") -> None:
    """A scatter plot of one task's draw: clean points by class, noisy ones in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X, y, noisy = dataset(kind)
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    ax.scatter(*X[noisy].T[:2], s=1, c="0.6", label="noisy (shared Gaussian)", rasterized=True)
    ax.scatter(*X[~noisy].T[:2], s=1, c=y[~noisy], cmap="tab10", rasterized=True)
    ax.set_title(f"make_noisy_blobs({kind!r}, random_state={DATASET_SEED[kind]})")
    ax.legend(loc="upper right", markerscale=8, fontsize=8)
    ax.set_aspect("equal")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".png", delete=False) as f:
        fig.savefig(f, format="png")
    publish(f.name, path)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--datasets", nargs="*", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--strategies",
        nargs="*",
        choices=STRATEGIES + EXTRA_STRATEGIES,
        default=list(STRATEGIES),
    )
    parser.add_argument("--seeds", nargs="*", type=int, default=list(SEEDS))
    parser.add_argument("--halves", nargs="*", choices=HALVES, default=list(HALVES))
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    parser.add_argument(
        "--fresh", action="store_true", help="recompute every run, overwriting the cache"
    )
    parser.add_argument(
        "--dataset-seed",
        type=int,
        help=f"another draw of the tasks (default {DATASET_SEED['LD']}); the report is then "
        "printed, not written",
    )
    parser.add_argument("--out", type=Path, default=DOC, help="the Markdown report")
    parser.add_argument(
        "--plot-data", type=Path, metavar="PNG", help="only draw the LD data to this file"
    )
    args = parser.parse_args(argv)
    if args.plot_data:
        plot_data(args.plot_data)
        print(f"wrote {args.plot_data}")
        return 0

    if args.dataset_seed is not None:
        use_dataset_seed(args.dataset_seed)
    tasks = [
        (kind, strategy, seed, half)
        for kind in args.datasets
        for strategy in args.strategies
        for seed in args.seeds
        for half in args.halves
    ]
    cache_dir = args.cache_dir
    load_start = tuple(round(v, 2) for v in os.getloadavg())
    started = time.perf_counter()
    results, computed = run_all(tasks, cache_dir, args.jobs, fresh=args.fresh)
    timing = {
        "wall": round(time.perf_counter() - started, 1),
        "jobs": args.jobs,
        "computed": computed,
        "load_start": load_start,
        "load_end": tuple(round(v, 2) for v in os.getloadavg()),
        "date": datetime.date.today().isoformat(),
    }
    table = summarize(results)
    for line in markdown_table(table, [s for s in STRATEGIES + EXTRA_STRATEGIES]):
        print(line)
    print(f"wall {timing['wall']:.0f} s, load {load_start} -> {timing['load_end']}")
    if args.dataset_seed is not None or set(tasks) != set(default_tasks()):
        return 0
    timing_path = cache_dir / "last-full-run.json"
    if computed == len(tasks):
        write_atomic(timing_path, json.dumps(timing))
    try:
        last = json.loads(timing_path.read_text())
        timing["last_full"] = (
            f"{last['wall']:.0f} s wall on {last['jobs']} processes, {last['date']}, load "
            f"average {tuple(last['load_start'])} at start and {tuple(last['load_end'])} at "
            "the end"
        )
        timing["last_full_wall"] = last["wall"]
    except (OSError, ValueError, KeyError):
        pass
    # Reported when cached: the published k-means variant and other draws of the data.
    variant = [t for t in cached_results(cache_dir, EXTRA_STRATEGIES) if t]
    write_doc(
        summarize(results + variant), results + variant, other_draws(cache_dir), timing, args.out
    )
    print(f"wrote {args.out}")
    return 0


def default_tasks(strategies=STRATEGIES) -> list[tuple]:
    return [(k, s, seed, h) for k in DATASETS for s in strategies for seed in SEEDS for h in HALVES]


def cached_results(cache_dir: Path, strategies) -> list[dict | None]:
    return [load_cached(cache_path(cache_dir, *task)) for task in default_tasks(strategies)]


def other_draws(cache_dir: Path) -> dict[int, dict]:
    """draw -> summary table of the runs cached for other draws of the data."""
    default = dict(DATASET_SEED)
    draws = {
        int(p.name.rsplit("draw", 1)[1])
        for p in cache_dir.glob("*-draw*")
        if p.is_dir() and p.name.rsplit("draw", 1)[1].isdigit()
    } - set(default.values())
    out = {}
    for draw in sorted(draws):
        use_dataset_seed(draw)
        runs = [r for r in cached_results(cache_dir, STRATEGIES) if r]
        if runs:
            out[draw] = summarize(runs)
    DATASET_SEED.update(default)
    dataset.cache_clear()
    ambiguous.cache_clear()
    return out


if __name__ == "__main__":
    sys.exit(main())
