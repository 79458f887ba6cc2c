"""Simulate the active-learning loop on labeled data, to compare strategies with evidence.

``simulate_loop`` runs one loop in memory. The harness runs a whole experiment from a TOML
file into a folder that survives a kill: ``create_experiment`` then ``run_experiment``
(which also resumes), ``replay_experiment`` and ``write_report``; see ``docs/experiment.md``.
"""

from active_labeling.experiment.config import ExperimentConfig, load_config
from active_labeling.experiment.report import write_report
from active_labeling.experiment.runner import (
    create_experiment,
    replay_experiment,
    run_experiment,
)
from active_labeling.experiment.simulation import LearningCurve, normalized_auc, simulate_loop

__all__ = [
    "ExperimentConfig",
    "LearningCurve",
    "create_experiment",
    "load_config",
    "normalized_auc",
    "replay_experiment",
    "run_experiment",
    "simulate_loop",
    "write_report",
]
