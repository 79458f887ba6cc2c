"""The plugin descriptor and the package agree, and the layout of the brief is in place."""

from __future__ import annotations

import json
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import active_labeling

ROOT = Path(__file__).resolve().parents[1]


def test_plugin_descriptor_matches_the_package():
    plugin = json.loads((ROOT / "plugin.json").read_text())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert plugin["id"] == pyproject["project"]["name"]
    assert plugin["version"] == pyproject["project"]["version"] == active_labeling.__version__
    assert {"label", "description", "icon"} <= set(plugin["meta"])


def test_top_level_layout():
    for path in ["plugin.json", "pyproject.toml", "python-lib/active_labeling", "tests"]:
        assert (ROOT / path).exists(), path


def test_without_chromium_the_test_summary_says_the_browser_tests_did_not_run(tmp_path):
    """`make test` on a machine without Chromium: the browser tests are skipped, and the
    summary says so in a line of its own, with how to install it."""
    import os
    import subprocess

    env = {**os.environ, "ACTIVE_LABELING_CHROMIUM": str(tmp_path / "no-chromium")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/browser"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # 5: nothing ran here (the module skipped whole); in the whole pass the others run.
    assert done.returncode == 5, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    loud = [line for line in lines if line.startswith("BROWSER TESTS SKIPPED: ")]
    assert len(loud) == 1 and "apt-get install chromium" in loud[0], done.stdout
    assert any(line.startswith("SKIPPED ") and "apt-get install chromium" in line for line in lines)
    assert "skipped" in lines[-1] and "passed" not in lines[-1]
