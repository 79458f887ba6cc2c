"""Start-up time of the ``active-labeling`` command, beside a bare ``python -c pass``.

Every call of the command is a fresh interpreter, so its start-up is what a user waits for
on ``--help`` or ``strategies``. Each command line runs as a child process, interleaved
with the others (round robin, alternating order) after a warm-up, and the medians are
compared with the median of ``python -c pass`` run in the same rounds. The two references
are what the command imported before its imports were made lazy: the experiment report
(scikit-learn, matplotlib) for every command line, ``--help`` included, and the samplers'
registry for ``strategies``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from _common import fmt_ratio, fmt_s, main, median, target

NAME = "cli"
TARGET_S = 0.3


def command() -> list[str]:
    """The console script beside this interpreter (what a user runs), else ``-m``."""
    script = Path(sys.executable).with_name("active-labeling")
    return [str(script)] if script.exists() else [sys.executable, "-m", "active_labeling.cli"]


def cases() -> dict[str, list[str]]:
    cli = command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "active-labeling --help": [*cli, "--help"],
        "active-labeling strategies": [*cli, "strategies"],
        "active-labeling run --help": [*cli, "run", "--help"],
        "reference: import the experiment report (every command, before)": [
            sys.executable,
            "-c",
            "import active_labeling.experiment.report",
        ],
        "reference: import the samplers' registry (strategies, before)": [
            sys.executable,
            "-c",
            "import active_labeling.samplers.registry",
        ],
    }


def run_once(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def run(quick: bool) -> dict:
    repeats = 5 if quick else 21
    lines = cases()
    env_note = "PYTHONDONTWRITEBYTECODE" in os.environ
    for argv in lines.values():  # warm-up: byte code compiled, files in the page cache
        run_once(argv)
    times: dict[str, list[float]] = {name: [] for name in lines}
    names = list(lines)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(run_once(lines[name]))
    bare = median(times["python -c pass"])
    rows, targets = [], []
    for name, values in times.items():
        seconds = median(values)
        rows.append([name, fmt_s(seconds), fmt_s(min(values)), fmt_ratio(seconds / bare)])
        if name in ("active-labeling --help", "active-labeling strategies"):
            targets.append(
                target(f"{name} <= {TARGET_S} s", name, fmt_s(seconds), seconds <= TARGET_S)
            )
    return {
        "title": "CLI start-up: `active-labeling --help` and `strategies` beside `python -c pass`",
        "about": __doc__.split("\n\n", 1)[1].strip().replace("\n", " "),
        "tables": [
            {
                "caption": f"Wall time of one call, a fresh process each (median of {repeats}, "
                "interleaved)",
                "columns": ["command line", "median", "fastest", "median / python -c pass"],
                "rows": rows,
                "footnote": f"The console script `{Path(command()[0]).name}` of the venv; "
                "its output goes to /dev/null."
                + (" PYTHONDONTWRITEBYTECODE was set." if env_note else ""),
            }
        ],
        "targets": targets,
    }


if __name__ == "__main__":
    main(NAME, run)
