"""Consensus between labelers (majority, Dawid-Skene) and likely label errors (confident
learning), on hand-made cases and on simulated labelers whose accuracy is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from active_labeling.errors import InputError
from active_labeling.metrics.consensus import dawid_skene, majority_vote
from active_labeling.metrics.label_errors import label_issues, out_of_fold_proba


def simulated_labels(accuracies, n_items=400, k=3, seed=0):
    """Each labeler labels every item: right with their accuracy, else another class."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n_items)
    rows = []
    for name, accuracy in accuracies.items():
        right = rng.random(n_items) < accuracy
        wrong = (truth + rng.integers(1, k, n_items)) % k
        given = np.where(right, truth, wrong)
        rows += [(f"i{i}", name, f"c{c}") for i, c in enumerate(given)]
    frame = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    return frame, pd.Series([f"c{c}" for c in truth], index=[f"i{i}" for i in range(n_items)])


def test_majority_vote_counts_and_ties():
    labels = pd.DataFrame(
        {
            "item_id": ["a", "a", "a", "b", "b", "c"],
            "annotator": ["x", "y", "z", "x", "y", "x"],
            "label": ["dog", "cat", "dog", "cat", "dog", "cat"],
        }
    )
    votes = majority_vote(labels, classes=["cat", "dog"]).set_index("item_id")
    assert votes.loc["a", "label"] == "dog" and votes.loc["a", "confidence"] == pytest.approx(2 / 3)
    assert votes.loc["b", "label"] is None  # a tie goes to review
    assert votes.loc["c", "unanimous"] and votes.loc["c", "n_labels"] == 1
    first = majority_vote(labels, classes=["dog", "cat"], tie="first").set_index("item_id")
    assert first.loc["b", "label"] == "dog"  # first in the project's order


def test_bad_label_frames_are_named():
    labels = pd.DataFrame({"item_id": ["a", "a"], "annotator": ["x", "x"], "label": ["u", "v"]})
    with pytest.raises(InputError, match="two labels of annotator 'x' for item 'a'"):
        majority_vote(labels)
    with pytest.raises(InputError, match="label 'v' is not one of the classes"):
        dawid_skene(labels.iloc[[1]], classes=["u"])
    with pytest.raises(InputError, match="no column 'annotator'"):
        majority_vote(labels[["item_id", "label"]])
    with pytest.raises(InputError, match="tie must be"):
        majority_vote(labels.iloc[[0]], tie="random")


def test_dawid_skene_estimates_the_labelers_and_beats_the_majority_when_they_differ():
    labels, truth = simulated_labels({"careful": 0.95, "fair": 0.8, "careless": 0.55})
    items, labelers = dawid_skene(labels, classes=["c0", "c1", "c2"])
    estimated = labelers.set_index("annotator")["accuracy"]
    for name, accuracy in {"careful": 0.95, "fair": 0.8, "careless": 0.55}.items():
        assert estimated[name] == pytest.approx(accuracy, abs=0.05)
    weighted = (items.set_index("item_id")["label"].reindex(truth.index) == truth).mean()
    votes = majority_vote(labels, tie="first").set_index("item_id")["label"]
    voted = (votes.reindex(truth.index) == truth).mean()
    assert weighted > voted + 0.02
    assert (items["confidence"] > 0.33).all() and (items["n_labels"] == 3).all()


def test_dawid_skene_is_deterministic_and_agrees_with_a_unanimous_crowd():
    labels, _ = simulated_labels({"a": 1.0, "b": 1.0}, n_items=30)
    first, _ = dawid_skene(labels)
    again, _ = dawid_skene(labels.sample(frac=1.0, random_state=3))
    assert first.set_index("item_id")["label"].equals(
        again.set_index("item_id")["label"].reindex(first["item_id"])
    )
    assert first["unanimous"].all()


def test_confident_learning_finds_flipped_labels_and_ranks_the_doubtful_first():
    X, y = make_blobs(600, centers=3, cluster_std=1.0, random_state=0)
    rng = np.random.default_rng(1)
    flipped = rng.random(len(y)) < 0.1
    noisy = np.where(flipped, (y + 1) % 3, y)
    proba = out_of_fold_proba(LogisticRegression(max_iter=1000), X, noisy, random_state=0)
    found = label_issues(noisy, proba, classes=[0, 1, 2])
    issue = found["issue"].to_numpy()
    precision = (issue & flipped).sum() / issue.sum()
    recall = (issue & flipped).sum() / flipped.sum()
    # The blobs overlap (the model is right on 91% of the true labels): cleanlab's
    # confident-learning filter finds the same 0.91 precision and 0.70 recall here.
    assert precision > 0.85 and recall > 0.65
    ranked = found.dropna(subset=["rank"]).sort_values("rank")
    assert ranked["self_confidence"].is_monotonic_increasing
    assert (found.loc[issue & flipped, "suggested"] == y[issue & flipped]).mean() > 0.9


def test_label_issues_refuses_mismatched_inputs():
    with pytest.raises(InputError, match="proba has 2 rows but labels 3"):
        label_issues(["a", "b", "a"], [[0.5, 0.5], [0.5, 0.5]])
    with pytest.raises(InputError, match="label 'z' is not one of the classes"):
        label_issues(["a", "z"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])
    with pytest.raises(InputError, match="a single labeled row"):
        out_of_fold_proba(LogisticRegression(), [[0.0], [1.0], [2.0]], [0, 0, 1])
