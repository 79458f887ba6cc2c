"""active-labeling: ML-assisted labeling with active learning.

The library behind the recipes, the labeling web app, the scenarios and the experiment
harness. Query strategies live in :mod:`active_labeling.samplers`.
"""

from active_labeling.errors import ActiveLabelingError, InputError

__version__ = "0.1.0"

__all__ = ["ActiveLabelingError", "InputError", "__version__"]
