"""Query strategies with scikit-learn conventions.

Constructors only store parameters; ``fit(X, y)`` sees the labeled data and returns
``self``; ``select_samples(X)`` returns positions in the pool ``X`` (the unlabeled rows),
best first, at most ``batch_size`` and never twice the same. Scored samplers add
``score_samples(X)`` and take a pool streamed as chunks.

Examples
--------
One iteration of active learning:

>>> import numpy as np
>>> from sklearn.linear_model import LogisticRegression
>>> from active_labeling.samplers import MarginSampler
>>> rng = np.random.default_rng(0)
>>> X_labeled = rng.normal(size=(20, 4)); y_labeled = (X_labeled[:, 0] > 0).astype(int)
>>> X_pool = rng.normal(size=(1000, 4))
>>> sampler = MarginSampler(LogisticRegression(), batch_size=10).fit(X_labeled, y_labeled)
>>> to_label = sampler.select_samples(X_pool)   # positions in X_pool, most uncertain first
>>> to_label.shape
(10,)
"""

from active_labeling.samplers._validation import PoolChunks, iter_chunks
from active_labeling.samplers.badge import BADGESampler
from active_labeling.samplers.base import BaseSampler, ScoredSampler, top_k
from active_labeling.samplers.clustering import (
    IWKMeansSampler,
    KMeansSampler,
    MiniBatchKMeansSampler,
    WKMeansSampler,
)
from active_labeling.samplers.committee import CommitteeSampler
from active_labeling.samplers.kcenter import KCenterGreedySampler
from active_labeling.samplers.multilabel import (
    LabelCardinalitySampler,
    MaxBinaryUncertaintySampler,
    MeanBinaryUncertaintySampler,
    MMCSampler,
)
from active_labeling.samplers.random import RandomSampler
from active_labeling.samplers.scores import entropy, least_confidence, margin
from active_labeling.samplers.typiclust import TypiClustSampler
from active_labeling.samplers.uncertainty import (
    EntropySampler,
    LeastConfidenceSampler,
    MarginSampler,
)

__all__ = [
    "BADGESampler",
    "BaseSampler",
    "CommitteeSampler",
    "EntropySampler",
    "IWKMeansSampler",
    "KCenterGreedySampler",
    "KMeansSampler",
    "LabelCardinalitySampler",
    "LeastConfidenceSampler",
    "MMCSampler",
    "MarginSampler",
    "MaxBinaryUncertaintySampler",
    "MeanBinaryUncertaintySampler",
    "MiniBatchKMeansSampler",
    "PoolChunks",
    "RandomSampler",
    "ScoredSampler",
    "TypiClustSampler",
    "WKMeansSampler",
    "entropy",
    "iter_chunks",
    "least_confidence",
    "margin",
    "top_k",
]
