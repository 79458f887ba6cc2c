"""Query by committee (Seung, Opper and Sompolinsky 1992; McCallum and Nigam 1998).

Several models vote; the rows they disagree on most are the ones to label. Disagreement is
the vote entropy (hard votes) or the mean Kullback-Leibler divergence of each member from
the consensus (soft votes), both scaled to [0, 1].
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import clone

from active_labeling.errors import InputError
from active_labeling.samplers._validation import n_rows, seed_estimator
from active_labeling.samplers.base import (
    MULTI_LABEL_HINT,
    ModelBasedMixin,
    ScoredSampler,
    check_labeled,
    is_multilabel_model,
    predict_proba,
    take_rows,
)
from active_labeling.samplers.scores import get_score_function

METHODS = ("vote_entropy", "kl_divergence")


def vote_entropy(member_proba: np.ndarray) -> np.ndarray:
    """Entropy of the members' hard votes, normalized by ``log k`` (k classes).

    Parameters
    ----------
    member_proba : ndarray of shape (m, n, k)
        Each member's class probabilities on the same rows and classes.

    Examples
    --------
    >>> P = np.array([[[0.9, 0.1], [0.8, 0.2]], [[0.2, 0.8], [0.7, 0.3]]])
    >>> vote_entropy(P)
    array([1., 0.])
    """
    m, n, k = member_proba.shape
    votes = member_proba.argmax(axis=2)
    counts = np.zeros((n, k))
    for member_votes in votes:
        counts[np.arange(n), member_votes] += 1
    return get_score_function("entropy", checked=True)(counts / m)


def mean_kl_divergence(member_proba: np.ndarray) -> np.ndarray:
    """Mean KL divergence of each member from the consensus, divided by ``log m``.

    ``KL(p_i || p_bar) <= log m`` because ``p_bar >= p_i / m``, so the score is in [0, 1].

    Examples
    --------
    >>> P = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]])
    >>> mean_kl_divergence(P)
    array([1., 0.])
    """
    m = member_proba.shape[0]
    if m < 2:
        return np.zeros(member_proba.shape[1])
    consensus = member_proba.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(
            member_proba > 0, member_proba * np.log(member_proba / consensus[None]), 0.0
        )
    return np.clip(terms.sum(axis=2).mean(axis=0) / np.log(m), 0.0, 1.0)


_DISAGREEMENT = {"vote_entropy": vote_entropy, "kl_divergence": mean_kl_divergence}


class CommitteeSampler(ModelBasedMixin, ScoredSampler):
    """Select the rows a committee of models disagrees on most.

    Parameters
    ----------
    classifier : estimator with ``predict_proba``, or a list of them
        A list is the committee itself (fitted as given if ``prefit``, otherwise each member
        fits a clone on the labeled data). A single estimator is bagged: ``n_members`` clones,
        each fitted on a bootstrap sample of the labeled data holding every class.
    batch_size : int, default=10
        How many rows to select.
    method : {"vote_entropy", "kl_divergence"}, default="vote_entropy"
        The disagreement measure.
    n_members : int, default=5
        Committee size when ``classifier`` is a single estimator (at least 2). Each member's
        ``random_state`` parameters, nested ones included, are seeded from ``random_state``;
        members given as a list keep their own.
    prefit : bool, default=False
        The list of classifiers is already fitted (requires a list).
    random_state : None, int or numpy Generator, default=None
        Seed of the bootstrap samples.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 2)); y = (X[:, 0] > 0).astype(int)
    >>> sampler = CommitteeSampler(DecisionTreeClassifier(random_state=0), batch_size=3,
    ...                            random_state=0).fit(X, y)
    >>> len(sampler.members_), sampler.select_samples(rng.normal(size=(50, 2))).shape
    (5, (3,))
    """

    #: A committee of one would always agree with itself.
    _int_params: ClassVar[dict[str, int]] = {**ScoredSampler._int_params, "n_members": 2}

    def __init__(
        self,
        classifier,
        batch_size: int = 10,
        *,
        method: str = "vote_entropy",
        n_members: int = 5,
        prefit: bool = False,
        random_state=None,
    ):
        self.classifier = classifier
        self.batch_size = batch_size
        self.method = method
        self.n_members = n_members
        self.prefit = prefit
        self.random_state = random_state

    def fit(self, X=None, y=None):
        """Fit the committee on the labeled data (or take a prefit list as is).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_labeled, d), optional with ``prefit``
        y : array-like of shape (n_labeled,), optional with ``prefit``
        """
        self._validate_params()
        if self.method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {self.method!r}")
        committee = isinstance(self.classifier, list | tuple)
        members = list(self.classifier) if committee else [self.classifier]
        for member in members:
            self._check_classifier(member)
        if committee and len(members) < 2:
            raise InputError(
                f"a committee needs at least 2 members, got {len(members)}: disagreement of "
                "one model with itself is always 0"
            )
        if self.prefit:
            if not committee:
                raise InputError(
                    "CommitteeSampler with prefit=True needs a list of fitted classifiers"
                )
            for i, member in enumerate(members):
                self._check_prefit(member, f"committee member {i}")
            self.members_ = members
        elif committee:
            # Members given as a list keep their own seeds: set random_state on each.
            X, y = check_labeled(X, y, model_input=True)
            self.members_ = [self._fit_model(clone(member), X, y) for member in members]
        else:
            X, y = check_labeled(X, y, model_input=True)
            rng = self._rng()
            self.members_ = []
            for _ in range(self.n_members):
                rows = _bootstrap_with_every_class(y, rng)
                member = seed_estimator(clone(self.classifier), rng)
                self.members_.append(self._fit_model(member, take_rows(X, rows), y[rows]))
        multilabel = [i for i, m in enumerate(self.members_) if is_multilabel_model(m)]
        if multilabel:
            raise InputError(
                f"CommitteeSampler: committee member {multilabel[0]} is multi-label; a "
                "committee votes on single-label classes: use a multi-label strategy "
                f"({MULTI_LABEL_HINT})"
            )
        self.classes_ = np.unique(np.concatenate([m.classes_ for m in self.members_]))
        return self

    def _prepare(self) -> None:
        self._check_fitted("members_")

    def member_proba(self, X, row_offset: int = 0) -> np.ndarray:
        """Each member's probabilities over ``classes_``: shape (m, n, k)."""
        self._check_fitted("members_")
        out = np.zeros((len(self.members_), n_rows(X), len(self.classes_)))
        for i, member in enumerate(self.members_):
            proba = predict_proba(member, X, row_offset, f"committee member {i}")
            out[i][:, np.searchsorted(self.classes_, member.classes_)] = proba
        return out

    def _score_chunk(self, X, rng, row_offset: int = 0) -> np.ndarray:
        return _DISAGREEMENT[self.method](self.member_proba(X, row_offset))


def _bootstrap_with_every_class(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bootstrap sample of positions in which every class of ``y`` appears."""
    rows = rng.integers(len(y), size=len(y))
    missing = np.setdiff1d(np.unique(y), y[rows])
    extra = [rng.choice(np.flatnonzero(y == cls)) for cls in missing]
    return np.concatenate([rows, np.asarray(extra, dtype=rows.dtype)])
