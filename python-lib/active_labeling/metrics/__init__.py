"""Monitoring metrics and stopping rules for a labeling project.

Pure functions: arrays or frames in, numbers (or small frames) out. They never read the
store and never write anything; the monitoring recipe reads the inputs and writes the
results. Each docstring gives the formula and its source. ``docs/metrics.md`` tells what
each metric means for a labeling team.

Examples
--------
>>> from active_labeling.metrics import contradiction_ratio, stopping_advice
>>> contradiction_ratio([0, 1, 1, 0], [0, 1, 0, 0])
0.25
"""

from active_labeling.metrics.advice import (
    ADVICE_METRICS,
    AdvicePolicy,
    History,
    advise,
    classic_policy,
    default_policy,
    first_stop,
    make_rule,
    preset_policy,
    stopping_advice,
)
from active_labeling.metrics.batch import batch_agreement, batch_easiness
from active_labeling.metrics.consensus import dawid_skene, majority_vote
from active_labeling.metrics.contradictions import contradiction_ratio, sample_for_contradictions
from active_labeling.metrics.cost import cost_projection
from active_labeling.metrics.exploration import (
    exploration_distance,
    exploration_gain,
    nearest_distances,
)
from active_labeling.metrics.kappa import cohen_kappa, fleiss_kappa
from active_labeling.metrics.label_errors import label_issues, out_of_fold_proba
from active_labeling.metrics.label_sets import (
    binary_mean_confidence,
    binary_sample_uncertainty,
    class_frequency,
    label_cardinality,
    per_class_labeler_agreement,
    set_agreement,
    set_batch_agreement,
    set_batch_easiness,
    set_contradiction_ratio,
)
from active_labeling.metrics.labels import (
    class_balance,
    current_labels,
    labeler_agreement,
    labels_per_hour,
    median_lead_time,
)
from active_labeling.metrics.scores import cross_validated_scores, holdout_scores
from active_labeling.metrics.stopping import (
    classification_change_stop,
    confidence_stop,
    mean_confidence,
    sample_uncertainty,
    stabilizing_predictions_stop,
    stop_set_kappa,
    uncertainty_stop,
    uncertainty_variance,
    variance_stop,
)

__all__ = [
    "ADVICE_METRICS",
    "AdvicePolicy",
    "History",
    "advise",
    "batch_agreement",
    "batch_easiness",
    "binary_mean_confidence",
    "binary_sample_uncertainty",
    "class_balance",
    "class_frequency",
    "classic_policy",
    "classification_change_stop",
    "cohen_kappa",
    "confidence_stop",
    "contradiction_ratio",
    "cost_projection",
    "cross_validated_scores",
    "current_labels",
    "dawid_skene",
    "default_policy",
    "exploration_distance",
    "exploration_gain",
    "first_stop",
    "fleiss_kappa",
    "holdout_scores",
    "label_cardinality",
    "label_issues",
    "labeler_agreement",
    "labels_per_hour",
    "majority_vote",
    "make_rule",
    "mean_confidence",
    "median_lead_time",
    "nearest_distances",
    "out_of_fold_proba",
    "per_class_labeler_agreement",
    "preset_policy",
    "sample_for_contradictions",
    "sample_uncertainty",
    "set_agreement",
    "set_batch_agreement",
    "set_batch_easiness",
    "set_contradiction_ratio",
    "stabilizing_predictions_stop",
    "stop_set_kappa",
    "stopping_advice",
    "uncertainty_stop",
    "uncertainty_variance",
    "variance_stop",
]
