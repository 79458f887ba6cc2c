"""Shared fixtures: a small, seeded, three-class problem."""

from __future__ import annotations

import pytest
from sklearn.datasets import make_classification


@pytest.fixture(scope="session")
def problem():
    """(X_labeled, y_labeled, X_pool): 30 labeled rows, 300 pool rows, 3 classes."""
    X, y = make_classification(
        n_samples=330,
        n_features=6,
        n_informative=4,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )
    return X[:30], y[:30], X[30:]
