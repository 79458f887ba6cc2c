"""What the benchmarks share: synthetic data, interleaved timing, child processes, reports.

Rules kept by every benchmark (see bench/README.md):

- timings are compared with a baseline or a peer measured in the same script, as ratios;
  nothing is asserted, each target is only reported as met or missed;
- peak memory is measured in a fresh child process per configuration: ``ru_maxrss`` at the
  end of the child (the whole process) and the ``tracemalloc`` peak of the measured call
  (NumPy reports its buffers to tracemalloc);
- a streamed pool is generated chunk after chunk from a seeded RNG, never held whole.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
MIB = 1024 * 1024
N_FEATURES = 50
LABELED_SEED = 0
POOL_SEED = 1


# ---------------------------------------------------------------------------------------
# Data


def make_problem(n_classes: int, n_labeled: int = 2000, n_features: int = N_FEATURES):
    """A synthetic ``n_classes`` problem and a LogisticRegression fitted on its labeled rows.

    Labels are the argmax of a random linear map plus Gumbel noise, so the classifier is
    neither sure of everything nor of nothing. Returns ``(clf, X_labeled, y_labeled)``.
    """
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(LABELED_SEED)
    weights = rng.normal(size=(n_features, n_classes)) * (2.0 / np.sqrt(n_features))
    X = rng.standard_normal((n_labeled, n_features))
    y = np.argmax(X @ weights + rng.gumbel(size=(n_labeled, n_classes)), axis=1)
    clf = LogisticRegression(max_iter=1000).fit(X, y)
    return clf, X, y


def pool_chunks(
    n_rows: int, chunk_rows: int, n_features: int = N_FEATURES, seed: int = POOL_SEED
) -> Iterator[np.ndarray]:
    """The pool as a generator of chunks drawn on the fly: the whole pool never exists."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_rows, chunk_rows):
        yield rng.standard_normal((min(chunk_rows, n_rows - start), n_features))


def pool_array(n_rows: int, n_features: int = N_FEATURES, seed: int = POOL_SEED) -> np.ndarray:
    """The pool as one array (same distribution as the chunks)."""
    return np.random.default_rng(seed).standard_normal((n_rows, n_features))


# ---------------------------------------------------------------------------------------
# Timing


def interleaved(
    contenders: dict[str, Callable[[], object]], repeats: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall-clock seconds of each contender, run in turn (round robin) ``repeats`` times.

    Interleaving spreads the machine's noise over all contenders instead of one; the order
    alternates between rounds so no contender always runs right after the same other one.
    """
    # Imports leave hundreds of thousands of objects; freeze them so that the collection
    # before each timed call (which keeps garbage of one contender off the next) is cheap.
    gc.collect()
    gc.freeze()
    for _ in range(warmup):
        for fn in contenders.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            gc.collect()
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_ratio(times: dict[str, list[float]], a: str, b: str) -> float:
    """Median over rounds of ``a``'s time divided by ``b``'s in the same round.

    Two runs of one round are seconds apart, so they share the machine's load of the
    moment: this is the ratio least disturbed by another process on a small machine.
    """
    return statistics.median(x / y for x, y in zip(times[a], times[b], strict=True))


# ---------------------------------------------------------------------------------------
# Memory, in a child process


def current_rss() -> int:
    """Resident set size of this process now, in bytes."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:  # pragma: no cover - psutil is in the bench extra
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def max_rss() -> int:
    """Peak resident set size of this process so far, in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux ``clear_refs``), so ``ru_maxrss`` restarts here."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure_peak(fn: Callable[[], object], warmup: Callable[[], object] | None = None) -> dict:
    """Run ``fn`` once; its memory peaks in MiB and its (traced) duration.

    ``warmup`` (the same call on a tiny input) runs first, so that one-time allocations
    (BLAS thread buffers, first-call caches) count in the RSS before the call, not in it.

    - ``ru_maxrss_mib``: the whole child's peak RSS (interpreter, imports, data, the call);
    - ``call_rss_peak_mib``: the peak RSS during the call alone (the peak is reset just
      before it; NaN where the kernel does not allow that), ``rss_before_mib`` the RSS then;
    - ``tracemalloc_peak_mib``: the peak of what the call allocates (NumPy buffers included).
    """
    if warmup is not None:
        warmup()
    gc.collect()
    peak_before = max_rss()
    rss_before = current_rss()
    tracemalloc.start()
    reset = reset_peak_rss()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    call_peak = max_rss()
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "vm_hwm_mib": vm_hwm() / MIB,
        "rss_before_mib": rss_before / MIB,
        "call_rss_peak_mib": call_peak / MIB if reset else float("nan"),
        "ru_maxrss_mib": max(peak_before, call_peak) / MIB,
        "tracemalloc_peak_mib": traced_peak / MIB,
        "seconds_traced": seconds,
    }


def vm_hwm() -> float:
    """This address space's peak RSS (``VmHWM``) in bytes; NaN where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return float("nan")


def run_child(script: str | Path, spec: dict, timeout: float = 900) -> dict:
    """Run ``script --child SPEC`` in a fresh interpreter; its last stdout line is JSON.

    The child is started by a small ``sh`` that forks it: on Linux, ``ru_maxrss`` survives
    ``exec`` and would otherwise start at this (large) process's own peak RSS.
    """
    cmd = [sys.executable, str(script), "--child", json.dumps(spec)]
    if os.path.exists("/bin/sh"):
        # Not the last command of the script, so sh forks instead of exec'ing it.
        cmd = ["/bin/sh", "-c", '"$@"; exit $?', "sh", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"child timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"error": f"child exited {proc.returncode}: {tail}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------
# Peers


def try_import(what: str, fn: Callable[[], object]):
    """``(value, None)`` or ``(None, "ImportError: ...")``: a peer that fails is reported."""
    try:
        return fn(), None
    except Exception as exc:
        return None, f"{what} unavailable: {type(exc).__name__}: {exc}"


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------------------------------
# Reporting


def fmt_s(seconds: float) -> str:
    """Seconds with a unit that keeps three significant digits."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds < 1.0:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def fmt_ratio(ratio: float) -> str:
    return "n/a" if ratio != ratio else f"{ratio:.2f}"


def fmt_mib(mib: float) -> str:
    return "n/a" if mib != mib else f"{mib:,.1f} MiB"


def status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def md_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_section(result: dict, level: int = 2) -> str:
    """One benchmark's result as Markdown: intro, tables, targets, notes."""
    h = "#" * level
    parts = [f"{h} {result['title']}", "", result.get("about", "").strip(), ""]
    if result.get("quick"):
        parts += ["*Quick run: sizes shrunk, verdicts only indicative.*", ""]
    for table in result.get("tables", []):
        parts += [f"**{table['caption']}**", "", md_table(table["columns"], table["rows"]), ""]
        if table.get("footnote"):
            parts += [table["footnote"], ""]
    if result.get("targets"):
        rows = [[t["target"], t["case"], t["measured"], t["status"]] for t in result["targets"]]
        parts += [
            "**Targets**",
            "",
            md_table(["target", "case", "measured", "verdict"], rows),
            "",
        ]
    for note in result.get("notes", []):
        parts += [f"- {note}"]
    if result.get("notes"):
        parts.append("")
    load = f"; 1-min load average before / after: {result['load']}" if "load" in result else ""
    parts.append(f"*Benchmark wall time: {result.get('seconds', float('nan')):.0f} s{load}.*")
    return "\n".join(parts).strip() + "\n"


def target(group: str, case: str, measured: str, ok: bool | None) -> dict:
    return {"target": group, "case": case, "measured": measured, "status": status(ok)}


def machine_info() -> dict:
    """The machine and the library versions the figures were taken with."""
    import scipy
    import sklearn
    from threadpoolctl import threadpool_info

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [
        " ".join(filter(None, [i.get("internal_api"), i.get("version")]))
        + f" ({i.get('architecture') or i.get('user_api')}, {i.get('num_threads')} threads, "
        f"{Path(i.get('filepath', '')).name})"
        for i in threadpool_info()
    ]

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
            )
            return out.stdout.strip()
        except OSError:
            return ""

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
        "blas": "; ".join(blas) or "unknown",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset"),
        "modAL-python": package_version("modAL-python"),
        "scikit-activeml": package_version("scikit-activeml"),
        "commit": git("rev-parse", "--short", "HEAD"),
        "library_dirty": bool(git("status", "--porcelain", "--", "python-lib")),
    }


# ---------------------------------------------------------------------------------------
# Command line shared by every benchmark script


def main(
    name: str,
    run: Callable[[bool], dict],
    child: Callable[[dict], dict] | None = None,
) -> None:
    """``--quick`` shrinks sizes; ``--json PATH`` saves the result; ``--child`` is internal."""
    parser = argparse.ArgumentParser(description=f"benchmark: {name}")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        if child is None:
            parser.error("this benchmark has no child mode")
        print(json.dumps(child(json.loads(args.child))))
        return
    start = time.perf_counter()
    result = run(args.quick)
    result["name"] = name
    result["quick"] = args.quick
    result["seconds"] = time.perf_counter() - start
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    print(render_section(result))
