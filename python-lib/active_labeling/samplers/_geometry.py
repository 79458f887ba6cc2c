"""Euclidean geometry for the diversity samplers, in bounded memory.

Distances are computed block by block with one matrix product each, so no n x m matrix
larger than a block is ever held. Squared distances are used wherever only their order
matters.
"""

from __future__ import annotations

import numpy as np

#: Rows per block: a block of distances is BLOCK_ROWS x CENTER_BLOCK floats at most.
BLOCK_ROWS = 2048
CENTER_BLOCK = 1024


def squared_norms(X: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """``|x - origin|^2`` for every row, a block at a time (no copy of ``X``)."""
    if origin is None:
        return np.einsum("ij,ij->i", X, X)
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], BLOCK_ROWS):
        block = X[start : start + BLOCK_ROWS] - origin
        out[start : start + BLOCK_ROWS] = np.einsum("ij,ij->i", block, block)
    return out


def min_squared_distances(
    X: np.ndarray,
    C: np.ndarray,
    X_norms: np.ndarray | None = None,
    origin: np.ndarray | None = None,
) -> np.ndarray:
    """For each row of ``X``, the squared distance to its nearest row of ``C``.

    ``|x - c|^2 = |x|^2 + (|c|^2 - 2 x.c)``: the bracket comes out of one matrix product
    of ``[x, 1]`` with ``[-2 c, |c|^2]``, its minimum over ``C`` is taken block by block,
    and ``|x|^2`` is added once at the end. Every vector is taken relative to ``origin``
    (pass the data's mean), so that the formula keeps its precision on columns with a large
    offset; ``X_norms`` must then be ``squared_norms(X, origin)``. Memory: the result plus
    one block of ``BLOCK_ROWS x CENTER_BLOCK`` floats.
    """
    n, d = X.shape
    out = np.full(n, np.inf)
    if C.shape[0] == 0:
        return out
    if origin is None:
        origin = np.zeros(d)
    if X_norms is None:
        X_norms = squared_norms(X, origin)
    X_block = np.ones((min(BLOCK_ROWS, n), d + 1))
    for c_start in range(0, C.shape[0], CENTER_BLOCK):
        Cb = C[c_start : c_start + CENTER_BLOCK] - origin
        C_aug = np.vstack([-2.0 * Cb.T, squared_norms(Cb)[None, :]])
        for start in range(0, n, BLOCK_ROWS):
            rows = min(BLOCK_ROWS, n - start)
            np.subtract(X[start : start + rows], origin, out=X_block[:rows, :d])
            partial = (X_block[:rows] @ C_aug).min(axis=1)
            block = out[start : start + rows]
            np.minimum(block, partial, out=block)
    out += X_norms
    np.maximum(out, 0.0, out=out)
    return out


def squared_distances_to(
    X: np.ndarray, c: np.ndarray, X_norms: np.ndarray, origin: np.ndarray | None = None
) -> np.ndarray:
    """Squared distances from every row of ``X`` to one point ``c``.

    With ``origin``, ``X_norms`` must be ``squared_norms(X, origin)``; ``(x - o).(c - o)``
    is computed as ``x.(c - o) - o.(c - o)``, whose error scales with ``|c - o|``, not ``|c|``.
    """
    u = c if origin is None else c - origin
    d2 = X @ u
    if origin is not None:
        d2 -= origin @ u
    d2 *= -2.0
    d2 += X_norms
    d2 += u @ u
    np.maximum(d2, 0.0, out=d2)
    return d2


def closest_distinct_rows(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """For each center in turn, the nearest row of ``X`` not already taken.

    Returns one distinct row position per center (so at most ``len(X)`` centers).
    """
    # Centred, the distance formula keeps its precision on columns with a large offset.
    origin = X.mean(axis=0)
    X, centers = X - origin, centers - origin
    X_norms = squared_norms(X)
    taken = np.zeros(X.shape[0], dtype=bool)
    chosen = np.empty(centers.shape[0], dtype=np.intp)
    # Nearest row of each center, a block of rows at a time (the first row wins a tie);
    # collisions between centers are resolved below.
    best = np.full(centers.shape[0], np.inf)
    nearest = np.zeros(centers.shape[0], dtype=np.intp)
    for start in range(0, X.shape[0], BLOCK_ROWS):
        d2 = centers @ X[start : start + BLOCK_ROWS].T
        d2 *= -2.0
        d2 += X_norms[None, start : start + BLOCK_ROWS]
        block_best = d2.argmin(axis=1)
        block_d2 = d2[np.arange(d2.shape[0]), block_best]
        better = block_d2 < best
        best[better] = block_d2[better]
        nearest[better] = start + block_best[better]
    for j, row in enumerate(nearest):
        if taken[row]:
            d2 = squared_distances_to(X, centers[j], X_norms)
            d2[taken] = np.inf
            row = int(d2.argmin())
        taken[row] = True
        chosen[j] = row
    return chosen
