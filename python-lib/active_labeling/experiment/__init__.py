"""Simulate the active-learning loop on labeled data, to compare strategies with evidence."""

from active_labeling.experiment.simulation import LearningCurve, normalized_auc, simulate_loop

__all__ = ["LearningCurve", "normalized_auc", "simulate_loop"]
