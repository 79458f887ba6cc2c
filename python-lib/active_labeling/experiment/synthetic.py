"""The synthetic noisy-blob data behind Table 1 of the tutorial.

Abraham and Dreyfus-Schmidt 2021, "Sample Noise Impact on Active Learning" (code in the public
repository dataiku-research/sample_noise_impact_on_active_learning) build their two synthetic
tasks from scikit-learn's ``make_blobs``:

- every *clean* blob is one isotropic Gaussian (``cluster_std`` 1) of ``n_samples // n_blobs``
  points with one label;
- two *noisy* blobs share one Gaussian of twice that size: its points are split at random
  half and half between the two blob labels, so no model can tell them apart;
- blob labels are dealt to the classes evenly (``n_blobs / n_classes`` blobs per class), in
  a random order.

Two settings: ``LD`` (2 features, 200 blobs of which 100 noisy, centres in a box of +-100)
and ``HD`` (40 features, 90 blobs of which 30 noisy, centres in a box of +-3). The generator
returns which samples are noisy (those drawn from a shared Gaussian), so that a simulation
can report the share of noisy samples a strategy labeled.

The dealing is the published one: nothing stops the two halves of a shared Gaussian from
landing in the same class (about one pair in ten); their samples are still marked noisy.
This module only builds data; it never reads or writes files.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields, replace

import numpy as np
from sklearn.datasets import make_blobs

from active_labeling.errors import InputError
from active_labeling.samplers._validation import as_generator, seed_from


@dataclass(frozen=True)
class NoisyBlobsSpec:
    """The parameters of one noisy-blob task (see ``NOISY_BLOBS``)."""

    n_samples: int
    n_features: int
    n_classes: int
    n_blobs: int
    n_noisy_blobs: int
    center_box: tuple[float, float]
    cluster_std: float = 1.0

    @property
    def samples_per_blob(self) -> int:
        return self.n_samples // self.n_blobs

    @property
    def n_gaussians(self) -> int:
        """Gaussians drawn: one per clean blob, one per pair of noisy blobs."""
        return self.n_blobs - self.n_noisy_blobs // 2


#: The two tasks of Table 1, with the published parameters.
NOISY_BLOBS: dict[str, NoisyBlobsSpec] = {
    "LD": NoisyBlobsSpec(
        n_samples=10_000,
        n_features=2,
        n_classes=10,
        n_blobs=200,
        n_noisy_blobs=100,
        center_box=(-100.0, 100.0),
    ),
    "HD": NoisyBlobsSpec(
        n_samples=10_000,
        n_features=40,
        n_classes=10,
        n_blobs=90,
        n_noisy_blobs=30,
        center_box=(-3.0, 3.0),
    ),
}


def noisy_blobs_spec(kind: str = "LD", **overrides) -> NoisyBlobsSpec:
    """The validated parameters of task ``kind`` with ``overrides`` applied.

    Raises
    ------
    InputError
        On an unknown kind, an unknown parameter, or values that cannot make the blobs
        (the message names the parameter).

    Examples
    --------
    >>> spec = noisy_blobs_spec("HD")
    >>> spec.samples_per_blob, spec.samples_per_blob * spec.n_blobs
    (111, 9990)
    >>> noisy_blobs_spec("LD", n_blobs=20, n_noisy_blobs=10).n_gaussians
    15
    """
    if kind not in NOISY_BLOBS:
        raise InputError(f"noisy blobs: kind must be one of {sorted(NOISY_BLOBS)}, got {kind!r}")
    known = {f.name for f in fields(NoisyBlobsSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InputError(
            f"noisy blobs: unknown parameter {unknown[0]!r}; choose among {sorted(known)}"
        )
    spec = replace(NOISY_BLOBS[kind], **overrides)
    _check_spec(spec)
    return spec


def _check_int(spec: NoisyBlobsSpec, name: str, minimum: int) -> int:
    value = getattr(spec, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise InputError(f"noisy blobs: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_spec(spec: NoisyBlobsSpec) -> None:
    n_features = _check_int(spec, "n_features", 1)
    n_classes = _check_int(spec, "n_classes", 2)
    n_blobs = _check_int(spec, "n_blobs", 1)
    n_noisy = _check_int(spec, "n_noisy_blobs", 0)
    _check_int(spec, "n_samples", 1)
    del n_features
    if n_blobs % n_classes:
        raise InputError(
            f"noisy blobs: n_blobs={n_blobs} must be a multiple of n_classes={n_classes}, so "
            "that every class gets as many blobs"
        )
    if n_noisy % 2 or n_noisy > n_blobs:
        raise InputError(
            f"noisy blobs: n_noisy_blobs={n_noisy} must be even (two noisy blobs share one "
            f"Gaussian) and at most n_blobs={n_blobs}"
        )
    if spec.samples_per_blob < 2:
        raise InputError(
            f"noisy blobs: n_samples={spec.n_samples} gives {spec.samples_per_blob} sample(s) "
            f"per blob for n_blobs={n_blobs}; need at least 2"
        )
    try:
        low, high = (float(v) for v in spec.center_box)
    except (TypeError, ValueError):
        raise InputError(
            f"noisy blobs: center_box must be a pair (low, high), got {spec.center_box!r}"
        ) from None
    if not low < high:
        raise InputError(f"noisy blobs: center_box must have low < high, got {spec.center_box!r}")
    std = spec.cluster_std
    if isinstance(std, bool) or not isinstance(std, numbers.Real) or not std > 0:
        raise InputError(f"noisy blobs: cluster_std must be a positive number, got {std!r}")


def make_noisy_blobs(
    kind: str = "LD", *, random_state=None, return_blobs: bool = False, **overrides
):
    """Draw the noisy-blob task ``kind`` ("LD" or "HD"), as the published protocol does.

    Parameters
    ----------
    kind : {"LD", "HD"}, default="LD"
        The task of Table 1: low dimension (2 features, 200 blobs, 100 noisy, box +-100) or
        high dimension (40 features, 90 blobs, 30 noisy, box +-3).
    random_state : None, int or numpy Generator
        Seed of the centres, the points, the half-and-half split of each shared Gaussian and
        the dealing of blobs to classes. The same seed gives the same data.
    return_blobs : bool, default=False
        Also return the blob of each point.
    **overrides
        Any field of ``NoisyBlobsSpec`` (``n_samples``, ``n_features``, ``n_classes``,
        ``n_blobs``, ``n_noisy_blobs``, ``center_box``, ``cluster_std``), to make a smaller
        or different task.

    Returns
    -------
    X : ndarray of shape (n_blobs * (n_samples // n_blobs), n_features)
        The points, in make_blobs' shuffled order.
    y : ndarray of int of shape (n,)
        The class of each point, 0 to n_classes - 1; every class holds the same number of
        points.
    noisy : ndarray of bool of shape (n,)
        True for the points drawn from a Gaussian shared by two noisy blobs.
    blobs : ndarray of int of shape (n,), only with ``return_blobs``
        The blob of each point, 0 to n_blobs - 1. Noisy blobs ``j`` and
        ``n_blobs - n_noisy_blobs // 2 + j`` (for ``j < n_noisy_blobs // 2``) share a Gaussian.

    Raises
    ------
    InputError
        On an unknown kind or parameter, or parameters that cannot make the blobs.

    Examples
    --------
    >>> X, y, noisy = make_noisy_blobs("LD", random_state=0)
    >>> X.shape, int(noisy.sum()), np.bincount(y).tolist() == [1000] * 10
    ((10000, 2), 5000, True)
    >>> X, y, noisy = make_noisy_blobs("HD", random_state=0)
    >>> X.shape, round(float(noisy.mean()), 3)
    ((9990, 40), 0.333)
    """
    spec = noisy_blobs_spec(kind, **overrides)
    rng = as_generator(random_state)
    per_blob = spec.samples_per_blob
    n_pairs = spec.n_noisy_blobs // 2
    # The shared Gaussians come first, twice the size of a clean blob.
    sizes = [2 * per_blob] * n_pairs + [per_blob] * (spec.n_blobs - spec.n_noisy_blobs)
    X, gaussian = make_blobs(
        n_samples=sizes,
        n_features=spec.n_features,
        cluster_std=spec.cluster_std,
        center_box=tuple(float(v) for v in spec.center_box),
        shuffle=True,
        random_state=seed_from(rng),
    )
    noisy = gaussian < n_pairs
    blob = gaussian.copy()
    for pair in range(n_pairs):
        members = np.flatnonzero(gaussian == pair)
        # Half of the shared Gaussian goes to the second blob of the pair.
        second = rng.permutation(members)[: members.shape[0] // 2]
        blob[second] = spec.n_gaussians + pair
    classes = rng.permutation(np.repeat(np.arange(spec.n_classes), spec.n_blobs // spec.n_classes))
    y = classes[blob].astype(np.intp)
    return (X, y, noisy, blob.astype(np.intp)) if return_blobs else (X, y, noisy)


def noisy_blobs_ld(random_state=None, **overrides):
    """``make_noisy_blobs("LD", ...)``: the generator named ``noisy_blobs_ld``."""
    return make_noisy_blobs("LD", random_state=random_state, **overrides)


def noisy_blobs_hd(random_state=None, **overrides):
    """``make_noisy_blobs("HD", ...)``: the generator named ``noisy_blobs_hd``."""
    return make_noisy_blobs("HD", random_state=random_state, **overrides)


def multilabel(random_state=None, **params):
    """scikit-learn's ``make_multilabel_classification``: the generator named
    ``multilabel``, for multi-label experiments.

    ``params`` are that function's (``n_samples``, ``n_features``, ``n_classes``,
    ``n_labels``: the mean number of classes per item, ``length``, ``allow_unlabeled``);
    the defaults are scikit-learn's. Items are bags of words drawn from their classes'
    word distributions, so the features are counts. Returns ``(X, Y, None)``, Y an (n, k)
    indicator matrix: no row is marked noisy.

    Examples
    --------
    >>> X, Y, noisy = multilabel(0, n_samples=50, n_classes=4)
    >>> X.shape, Y.shape, noisy is None
    ((50, 20), (50, 4), True)
    """
    from sklearn.datasets import make_multilabel_classification

    unknown = set(params) - MULTILABEL_PARAMS
    if unknown:
        raise InputError(
            f"multilabel: no parameter {sorted(unknown)[0]!r}; it takes "
            f"{', '.join(sorted(MULTILABEL_PARAMS))}"
        )
    try:
        X, Y = make_multilabel_classification(random_state=random_state, **params)
    except (TypeError, ValueError) as exc:
        raise InputError(f"multilabel: {exc}") from None
    return X.astype(np.float64), Y.astype(np.int64), None


MULTILABEL_PARAMS = frozenset(
    {"n_samples", "n_features", "n_classes", "n_labels", "length", "allow_unlabeled"}
)

#: The data generators by name, for experiment configs (``data = {generator = "..."}``).
#: Each returns ``(X, y, noisy)``; ``multilabel`` returns an indicator matrix for y and
#: None for noisy.
GENERATORS = {
    "noisy_blobs_ld": noisy_blobs_ld,
    "noisy_blobs_hd": noisy_blobs_hd,
    "multilabel": multilabel,
}
