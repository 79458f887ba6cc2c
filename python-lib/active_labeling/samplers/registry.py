"""Strategies by name: how recipes, the experiment harness and the CLI build a sampler.

A name maps to a sampler class; ``make_sampler`` wires it to an already fitted classifier
(``prefit=True``), except the committee, which fits its own members on the labeled data.
"""

from __future__ import annotations

import inspect

import numpy as np
from sklearn.base import clone

from active_labeling.errors import InputError
from active_labeling.samplers.badge import BADGESampler
from active_labeling.samplers.base import BaseSampler, preprocessed
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
from active_labeling.samplers.typiclust import TypiClustSampler
from active_labeling.samplers.uncertainty import (
    EntropySampler,
    LeastConfidenceSampler,
    MarginSampler,
)

STRATEGIES: dict[str, type[BaseSampler]] = {
    "random": RandomSampler,
    "least_confidence": LeastConfidenceSampler,
    "margin": MarginSampler,
    "entropy": EntropySampler,
    "kmeans": KMeansSampler,
    "minibatch_kmeans": MiniBatchKMeansSampler,
    "kcenter": KCenterGreedySampler,
    "wkmeans": WKMeansSampler,
    "iwkmeans": IWKMeansSampler,
    "committee": CommitteeSampler,
    "badge": BADGESampler,
    "typiclust": TypiClustSampler,
    "mean_binary_uncertainty": MeanBinaryUncertaintySampler,
    "max_binary_uncertainty": MaxBinaryUncertaintySampler,
    "mmc": MMCSampler,
    "label_cardinality": LabelCardinalitySampler,
}

#: Strategies that score a multi-label model's independent class probabilities only.
MULTI_LABEL_STRATEGIES = frozenset(
    {"mean_binary_uncertainty", "max_binary_uncertainty", "mmc", "label_cardinality"}
)
#: Strategies that score a single-label model's class probabilities only; the others
#: (model-free ones, WKMeans, IWKMeans, BADGE) take either kind.
SINGLE_LABEL_STRATEGIES = frozenset({"least_confidence", "margin", "entropy", "committee"})


def check_strategy_kind(strategy: str, multilabel: bool, *, field: str = "strategy") -> None:
    """Refuse a single-label strategy for a multi-label model and the reverse, in one line
    naming ``field`` and the strategies that fit.

    Examples
    --------
    >>> check_strategy_kind("margin", multilabel=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    active_labeling.errors.InputError: strategy: 'margin' ranks single-label models, and ...
    """
    _strategy_class(strategy)
    if multilabel and strategy in SINGLE_LABEL_STRATEGIES:
        fitting = sorted(set(STRATEGIES) - SINGLE_LABEL_STRATEGIES)
        raise InputError(
            f"{field}: {strategy!r} ranks single-label models, and the model is multi-label; "
            f"choose one of {', '.join(fitting)}"
        )
    if not multilabel and strategy in MULTI_LABEL_STRATEGIES:
        fitting = sorted(set(STRATEGIES) - MULTI_LABEL_STRATEGIES)
        raise InputError(
            f"{field}: {strategy!r} ranks multi-label models, and the model is single-label; "
            f"choose one of {', '.join(fitting)}"
        )


def multilabel_params(strategy: str, params: dict, thresholds=None) -> dict:
    """``params`` completed for a multi-label model: WKMeans and IWKMeans weigh with the
    mean binary uncertainty unless told otherwise; BADGE and label cardinality take the
    model's per-class ``thresholds`` (a list) unless given their own.

    Examples
    --------
    >>> multilabel_params("wkmeans", {"beta": 5})
    {'beta': 5, 'uncertainty': 'mean_binary'}
    >>> multilabel_params("label_cardinality", {}, [0.4, 0.6])
    {'thresholds': [0.4, 0.6]}
    """
    params = dict(params)
    if strategy in ("wkmeans", "iwkmeans"):
        params.setdefault("uncertainty", "mean_binary")
    if strategy in ("badge", "label_cardinality") and thresholds is not None:
        params.setdefault("thresholds", [float(t) for t in thresholds])
    return params


#: Strategies that measure distances between rows. Distances depend on the scale of each
#: feature, so the query-sampler recipe and the experiment harness give these strategies the
#: rows in the model's own feature space (the output of its preprocessing) and the model's
#: final estimator as the classifier.
DISTANCE_STRATEGIES = frozenset(
    {"kmeans", "minibatch_kmeans", "kcenter", "wkmeans", "iwkmeans", "badge", "typiclust"}
)


def strategy_view(strategy: str, model, X):
    """``(classifier, rows)`` as ``strategy`` should see them, given a fitted ``model``.

    A distance strategy given a fitted pipeline gets the pipeline's final estimator and
    ``X`` passed through the steps before it (dense float64), so that it measures distances
    where the model does; any other strategy, or a bare estimator, gets both as they are.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> X = np.array([[0.0, 100.0], [1.0, 300.0], [2.0, 500.0]])
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, [0, 0, 1])
    >>> clf, rows = strategy_view("kcenter", model, X)
    >>> type(clf).__name__, rows[:, 1].round(2).tolist()
    ('LogisticRegression', [-1.22, 0.0, 1.22])
    >>> strategy_view("margin", model, X)[1] is X
    True
    """
    from sklearn.pipeline import Pipeline

    if strategy not in DISTANCE_STRATEGIES or not isinstance(model, Pipeline) or len(model) < 2:
        return model, X
    return model[-1], preprocessed(model, X, np.float64)


def needs_classifier(strategy: str) -> bool:
    """Whether the strategy reads a model's probabilities."""
    return "classifier" in inspect.signature(_strategy_class(strategy)).parameters


def _strategy_class(strategy: str) -> type[BaseSampler]:
    try:
        return STRATEGIES[strategy]
    except KeyError:
        raise InputError(
            f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        ) from None


def make_sampler(
    strategy: str,
    *,
    classifier=None,
    batch_size: int = 10,
    random_state=None,
    **params,
) -> BaseSampler:
    """Build the sampler called ``strategy``.

    Parameters
    ----------
    strategy : str
        One of ``STRATEGIES``.
    classifier : estimator with ``predict_proba``, optional
        A fitted model, for the strategies that use one. The committee fits clones of it.
    batch_size : int, default=10
        How many rows to select.
    random_state : None, int or numpy Generator
        Passed to strategies that draw randomness.
    **params
        Further constructor parameters of the strategy (``beta``, ``method``...).

    Examples
    --------
    >>> make_sampler("kcenter", batch_size=5)
    KCenterGreedySampler(batch_size=5)
    """
    cls = _strategy_class(strategy)
    accepted = inspect.signature(cls).parameters
    unknown = set(params) - set(accepted)
    if unknown:
        raise InputError(
            f"strategy {strategy!r} has no parameter {sorted(unknown)[0]!r}; "
            f"it takes {', '.join(p for p in accepted if p != 'classifier')}"
        )
    kwargs = dict(params, batch_size=batch_size)
    if "random_state" in accepted:
        kwargs["random_state"] = random_state
    if "classifier" in accepted:
        if classifier is None:
            raise InputError(f"strategy {strategy!r} needs a classifier")
        if cls is CommitteeSampler:
            return cls(clone(classifier), **kwargs)
        kwargs.setdefault("prefit", True)
        return cls(classifier, **kwargs)
    return cls(**kwargs)
