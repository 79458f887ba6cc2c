"""Simulate the active-learning loop on labeled data, to compare strategies with evidence.

``simulate_loop`` runs one loop in memory. The harness runs a whole experiment from a TOML
file into a folder that survives a kill: ``create_experiment`` then ``run_experiment``
(which also resumes), ``replay_experiment`` and ``write_report``; see ``docs/experiment.md``.

The names are imported when first used: the ``active-labeling`` command registers the
``experiment`` commands (``experiment.commands``) without loading scikit-learn and
matplotlib.
"""

from __future__ import annotations

import importlib

#: Public name -> the module that defines it.
_MODULES = {
    "ExperimentConfig": "config",
    "load_config": "config",
    "write_report": "report",
    "create_experiment": "runner",
    "replay_experiment": "runner",
    "run_experiment": "runner",
    "LearningCurve": "simulation",
    "normalized_auc": "simulation",
    "simulate_loop": "simulation",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULES[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES))
