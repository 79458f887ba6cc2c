"""The query strategies' names and one-line summaries, readable without scikit-learn.

``active-labeling strategies`` prints this table: importing the samplers (scikit-learn,
SciPy) would take two seconds for a list of names. It must stay equal to
``samplers.registry.STRATEGIES`` (names, order, and each class's first docstring line);
``tests/test_cli.py`` checks that it does.
"""

from __future__ import annotations

#: name -> the first line of its sampler class's docstring, in the registry's order.
STRATEGY_SUMMARIES: dict[str, str] = {
    "random": "Select rows uniformly at random, without replacement.",
    "least_confidence": "Select the rows whose most probable class has the lowest probability.",
    "margin": "Select the rows with the smallest gap between the two most probable classes.",
    "entropy": "Select the rows whose predicted class distribution has the highest entropy.",
    "kmeans": "Select one representative row per cluster of a k-means on the pool.",
    "minibatch_kmeans": "``KMeansSampler`` with mini-batch k-means: much faster on large pools.",
    "kcenter": "Farthest-first traversal of the pool, starting from the labeled set.",
    "wkmeans": "Two-step uncertainty and diversity sampling (Zhdanov 2019).",
    "iwkmeans": "Incremental weighted k-means: labeled points are fixed centroids.",
    "committee": "Select the rows a committee of models disagrees on most.",
    "badge": "Select uncertain and diverse rows by k-means++ on gradient embeddings.",
    "typiclust": "Select the most typical row of the largest uncovered clusters.",
    "mean_binary_uncertainty": "Select the rows whose classes are, on average, the most uncertain.",
    "max_binary_uncertainty": "Select the rows holding the single most uncertain class decision.",
    "mmc": "Select the rows whose labels would most reduce the expected loss (MMC).",
    "label_cardinality": "Select the rows predicted with an unusual number of classes.",
}

#: Strategies of the query-sampler recipe that are not a sampler class of the registry.
RECIPE_ONLY: dict[str, str] = {
    "auto": "Choose the strategy of each round from the project's metrics (query-sampler "
    "recipe: --param strategy=auto).",
    "precomputed": "Rank by the uncertainty your own model gave each item, in a column or a "
    "file (any task type; no saved model needed).",
}
