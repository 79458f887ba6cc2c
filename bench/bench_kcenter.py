"""Benchmark 2: k-center greedy (core-set) against scikit-activeml's CoreSet.

Targets (full size):

- ``KCenterGreedySampler(batch_size=100).fit(X_labeled).select_samples(X_pool)`` on a
  100,000 x 50 pool with 1,000 labeled rows takes at most 2 s on 2 cores;
- it is no slower than ``skactiveml.pool.CoreSet().query(...)`` on the same arrays;
- on a 500,000 x 50 pool it completes under 1 GiB peak memory (child process, ru_maxrss,
  the pool itself included).

Run alone: ``.venv/bin/python bench/bench_kcenter.py [--quick]``.
"""

from __future__ import annotations

import numpy as np
from _common import (
    fmt_mib,
    fmt_ratio,
    fmt_s,
    interleaved,
    main,
    measure_peak,
    median,
    package_version,
    paired_ratio,
    pool_array,
    run_child,
    target,
    try_import,
)

NAME = "kcenter"
BATCH_SIZE = 100
N_LABELED = 1000
TIME_TARGET_S = 2.0
MEMORY_TARGET_MIB = 1024.0


def sizes(quick: bool) -> dict:
    if quick:
        return {"pool": 20_000, "large": 100_000, "repeats": 2}
    return {"pool": 100_000, "large": 500_000, "repeats": 5}


def labeled_set(n_features: int = 50):
    rng = np.random.default_rng(0)
    return rng.standard_normal((N_LABELED, n_features)), rng.integers(0, 5, N_LABELED)


def _coreset():
    from skactiveml.pool import CoreSet

    return CoreSet


def contenders(X_pool, X_lab, y_lab, CoreSet) -> dict:
    from active_labeling.samplers import KCenterGreedySampler

    def ours():
        return KCenterGreedySampler(batch_size=BATCH_SIZE).fit(X_lab).select_samples(X_pool)

    def peer():
        return CoreSet(random_state=0).query(X_lab, y_lab, candidates=X_pool, batch_size=BATCH_SIZE)

    out = {"ours": ours}
    if CoreSet is not None:
        out["skactiveml CoreSet"] = peer
    return out


def child(spec: dict) -> dict:
    """Peak memory of one selection on a pool built in this fresh process."""
    X_lab, y_lab = labeled_set()
    X_pool = pool_array(spec["n_rows"])
    CoreSet = _coreset() if spec["who"] != "ours" else None
    fn = contenders(X_pool, X_lab, y_lab, CoreSet)[spec["who"]]
    warmup = contenders(X_pool[:2000], X_lab, y_lab, CoreSet)[spec["who"]]
    result = measure_peak(fn, warmup)
    result["pool_mib"] = X_pool.nbytes / 2**20
    return result


def run(quick: bool) -> dict:
    cfg = sizes(quick)
    CoreSet, peer_error = try_import("scikit-activeml CoreSet", _coreset)
    X_lab, y_lab = labeled_set()
    X_pool = pool_array(cfg["pool"])
    cands = contenders(X_pool, X_lab, y_lab, CoreSet)
    times = interleaved(cands, cfg["repeats"])
    ours = median(times["ours"])
    targets = [
        target(
            f"time <= {TIME_TARGET_S:g} s",
            f"{cfg['pool']:,} x 50, {N_LABELED:,} labeled, batch {BATCH_SIZE}",
            f"{fmt_s(ours)} (best {fmt_s(min(times['ours']))})",
            ours <= TIME_TARGET_S,
        )
    ]
    time_rows = [["ours: KCenterGreedySampler", fmt_s(ours), fmt_s(min(times["ours"])), "1.00", ""]]
    notes = []
    if CoreSet is None:
        time_rows.append(["skactiveml CoreSet", peer_error, "", "", ""])
        targets.append(target("time ours / CoreSet <= 1", "", peer_error, None))
    else:
        peer = median(times["skactiveml CoreSet"])
        mine = cands["ours"]()
        theirs = np.asarray(cands["skactiveml CoreSet"]())
        same_order = bool(np.array_equal(mine, theirs))
        overlap = len(set(mine.tolist()) & set(theirs.tolist()))
        time_rows.append(
            [
                f"skactiveml {package_version('scikit-activeml')} CoreSet",
                fmt_s(peer),
                fmt_s(min(times["skactiveml CoreSet"])),
                fmt_ratio(paired_ratio(times, "skactiveml CoreSet", "ours")),
                f"same sequence: {'yes' if same_order else 'no'}; "
                f"{overlap}/{BATCH_SIZE} rows in common",
            ]
        )
        targets.append(
            target(
                "time ours / CoreSet <= 1",
                f"{cfg['pool']:,} x 50",
                fmt_ratio(paired_ratio(times, "ours", "skactiveml CoreSet")),
                paired_ratio(times, "ours", "skactiveml CoreSet") <= 1.0,
            )
        )

    mem_rows = []
    for n_rows in (cfg["pool"], cfg["large"]):
        for who in cands:
            res = run_child(__file__, {"n_rows": n_rows, "who": who})
            if "error" in res:
                mem_rows.append([who, f"{n_rows:,}", res["error"], *[""] * 5])
                continue
            mem_rows.append(
                [
                    who,
                    f"{n_rows:,}",
                    fmt_mib(res["pool_mib"]),
                    fmt_mib(res["rss_before_mib"]),
                    fmt_mib(res["call_rss_peak_mib"]),
                    fmt_mib(res["ru_maxrss_mib"]),
                    fmt_mib(res["tracemalloc_peak_mib"]),
                    fmt_s(res["seconds_traced"]),
                ]
            )
            if who == "ours" and n_rows == cfg["large"]:
                targets.append(
                    target(
                        f"peak memory < {MEMORY_TARGET_MIB:,.0f} MiB (ru_maxrss, whole child)",
                        f"{n_rows:,} x 50",
                        fmt_mib(res["ru_maxrss_mib"]),
                        res["ru_maxrss_mib"] < MEMORY_TARGET_MIB,
                    )
                )
    notes.append(
        "CoreSet is called as `CoreSet(random_state=0).query(X_labeled, y_labeled, "
        f"candidates=X_pool, batch_size={BATCH_SIZE})`: the labeled rows seed the "
        "traversal as in ours. It breaks ties at random; on continuous data there are none."
    )
    return {
        "title": "2. K-center greedy (core-set) vs scikit-activeml CoreSet",
        "about": (
            f"`KCenterGreedySampler(batch_size={BATCH_SIZE}).fit(X_labeled).select_samples"
            f"(X_pool)` with {N_LABELED:,} labeled rows and a {cfg['pool']:,} x 50 pool "
            "(standard normal), against scikit-activeml's CoreSet on the same arrays."
        ),
        "tables": [
            {
                "caption": f"Time, {cfg['pool']:,} x 50 pool (median of {cfg['repeats']}, "
                "interleaved)",
                "columns": ["", "median", "best", "peer / ours (paired rounds)", "selection"],
                "rows": time_rows,
            },
            {
                "caption": "Peak memory, each configuration in a fresh child process",
                "columns": [
                    "",
                    "pool rows",
                    "the pool array",
                    "RSS before the call",
                    "peak RSS of the call",
                    "ru_maxrss of the whole child",
                    "tracemalloc peak of the call",
                    "time of the call",
                ],
                "rows": mem_rows,
                "footnote": "The child builds the pool, runs a warm-up call on 2,000 rows, "
                "then the measured call. *ru_maxrss of the whole child* (the target) "
                "includes the interpreter, the imports and the pool; *peak RSS of the call* "
                "is ru_maxrss with the peak reset just before the call; the tracemalloc peak "
                "is what the selection itself allocates on top of the pool.",
            },
        ],
        "targets": targets,
        "notes": notes,
    }


if __name__ == "__main__":
    main(NAME, run, child)
