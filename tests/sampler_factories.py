"""Every sampler of the library, built the same way, so each common check runs over all."""

from __future__ import annotations

from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import ClassifierChain
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from active_labeling import samplers


def _lr():
    return LogisticRegression(max_iter=500)


def _ovr():
    return OneVsRestClassifier(_lr())


#: One factory per sampler: the contract every sampler must meet is tested over these.
SAMPLER_FACTORIES = {
    "RandomSampler": lambda b, rs: samplers.RandomSampler(batch_size=b, random_state=rs),
    "LeastConfidenceSampler": lambda b, rs: samplers.LeastConfidenceSampler(_lr(), b),
    "MarginSampler": lambda b, rs: samplers.MarginSampler(_lr(), b),
    "EntropySampler": lambda b, rs: samplers.EntropySampler(_lr(), b),
    "KMeansSampler": lambda b, rs: samplers.KMeansSampler(b, random_state=rs),
    "MiniBatchKMeansSampler": lambda b, rs: samplers.MiniBatchKMeansSampler(b, random_state=rs),
    "KCenterGreedySampler": lambda b, rs: samplers.KCenterGreedySampler(b, random_state=rs),
    "WKMeansSampler": lambda b, rs: samplers.WKMeansSampler(_lr(), b, random_state=rs),
    "IWKMeansSampler": lambda b, rs: samplers.IWKMeansSampler(_lr(), b, random_state=rs),
    "CommitteeSampler": lambda b, rs: samplers.CommitteeSampler(
        DecisionTreeClassifier(max_depth=3), b, random_state=rs
    ),
    "CommitteeSampler[kl]": lambda b, rs: samplers.CommitteeSampler(
        [_lr(), DecisionTreeClassifier(max_depth=3, random_state=0)],
        b,
        method="kl_divergence",
        random_state=rs,
    ),
    "BADGESampler": lambda b, rs: samplers.BADGESampler(_lr(), b, random_state=rs),
    "BADGESampler[mlp]": lambda b, rs: samplers.BADGESampler(
        MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=500, random_state=0),
        b,
        random_state=rs,
    ),
    "TypiClustSampler": lambda b, rs: samplers.TypiClustSampler(b, random_state=rs),
    # Multi-label: fitted on an indicator matrix of label sets (conftest's problem fixture
    # gives these the multi-label problem).
    "MeanBinaryUncertaintySampler": lambda b, rs: samplers.MeanBinaryUncertaintySampler(_ovr(), b),
    "MeanBinaryUncertaintySampler[forest]": lambda b, rs: samplers.MeanBinaryUncertaintySampler(
        RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0), b
    ),
    "MaxBinaryUncertaintySampler": lambda b, rs: samplers.MaxBinaryUncertaintySampler(_ovr(), b),
    "MMCSampler": lambda b, rs: samplers.MMCSampler(_ovr(), b),
    "MMCSampler[chain]": lambda b, rs: samplers.MMCSampler(
        ClassifierChain(_lr(), random_state=0), b
    ),
    "LabelCardinalitySampler": lambda b, rs: samplers.LabelCardinalitySampler(_ovr(), b),
    "KCenterGreedySampler[multilabel]": lambda b, rs: samplers.KCenterGreedySampler(
        b, random_state=rs
    ),
    "WKMeansSampler[multilabel]": lambda b, rs: samplers.WKMeansSampler(
        _ovr(), b, uncertainty="mean_binary", random_state=rs
    ),
    "IWKMeansSampler[multilabel]": lambda b, rs: samplers.IWKMeansSampler(
        _ovr(), b, uncertainty="max_binary", random_state=rs
    ),
    "BADGESampler[multilabel]": lambda b, rs: samplers.BADGESampler(_ovr(), b, random_state=rs),
}

#: The factories whose samplers are fitted on label sets (the multi-label problem).
MULTI_LABEL = {
    name
    for name in SAMPLER_FACTORIES
    if name.endswith("[multilabel]")
    or name.split("[")[0]
    in (
        "MeanBinaryUncertaintySampler",
        "MaxBinaryUncertaintySampler",
        "MMCSampler",
        "LabelCardinalitySampler",
    )
}

SCORED = [
    name
    for name, make in SAMPLER_FACTORIES.items()
    if isinstance(make(1, 0), samplers.ScoredSampler)
]
