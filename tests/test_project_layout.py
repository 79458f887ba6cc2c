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
