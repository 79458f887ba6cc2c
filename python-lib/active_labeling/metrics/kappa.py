"""Chance-corrected agreement: Cohen's kappa (two raters) and Fleiss' kappa (many).

Both return NaN when agreement expected by chance is already 1 (every rating is one and
the same class): kappa is then 0/0, and no number would be honest.
"""

from __future__ import annotations

import numpy as np

from active_labeling.errors import InputError
from active_labeling.metrics._checks import (
    check_comparable_labels,
    check_labels,
    check_same_length,
)


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two raters who rated the same rows.

    ``kappa = (p_o - p_e) / (1 - p_e)``, with ``p_o`` the share of rows where the raters
    agree and ``p_e = sum_k p_a(k) * p_b(k)`` the agreement expected by chance from each
    rater's class shares (Cohen 1960). NaN when ``p_e = 1``.

    Parameters
    ----------
    a, b : array-like of shape (n,)
        The two raters' classes, row by row.

    Returns
    -------
    float
        1 for perfect agreement, 0 for chance level, negative below chance.

    Examples
    --------
    Agreement on 3 of 4 rows (p_o = 0.75); each rater says "x" half the time (p_e = 0.5):

    >>> cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    0.5
    """
    a = check_labels(a, "a")
    b = check_labels(b, "b")
    check_same_length(a, b, "a", "b")
    check_comparable_labels(a, b, "a", "b")
    classes, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    n, k = a.shape[0], classes.shape[0]
    code_a, code_b = codes[:n], codes[n:]
    p_o = float(np.mean(code_a == code_b))
    p_e = float(np.bincount(code_a, minlength=k) @ np.bincount(code_b, minlength=k)) / n**2
    if p_e >= 1.0:
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(counts) -> float:
    """Fleiss' kappa from an items x classes table of rating counts.

    ``counts[i, j]`` is how many raters put item ``i`` in class ``j``; the raters need not
    be the same people from item to item. With ``n_i`` the ratings of item ``i``:

    - ``P_i = (sum_j counts[i, j]**2 - n_i) / (n_i * (n_i - 1))``, the share of agreeing
      rater pairs on item ``i``; ``P_bar`` is their mean;
    - ``p_j = sum_i counts[i, j] / sum_i n_i``, the share of all ratings in class ``j``;
      ``P_e = sum_j p_j**2``;
    - ``kappa = (P_bar - P_e) / (1 - P_e)`` (Fleiss 1971).

    With the same number of ratings on every item this is exactly Fleiss' formula; items
    with different numbers of ratings use the same per-item agreement ``P_i``, the common
    extension. NaN when ``P_e = 1``.

    Parameters
    ----------
    counts : array-like of shape (n_items, n_classes)
        Non-negative integer counts; every item needs at least 2 ratings.

    Returns
    -------
    float

    Examples
    --------
    Two items rated by three raters: unanimous on the first, 2 to 1 on the second.
    ``P_bar = (1 + 1/3) / 2 = 2/3``, ``p = (4/6, 2/6)``, ``P_e = 5/9``, kappa = 1/4:

    >>> round(fleiss_kappa([[3, 0], [1, 2]]), 4)
    0.25
    """
    try:
        table = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"counts must be a table of numbers: {exc}") from None
    if table.ndim != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise InputError(f"counts must be a non-empty items x classes table, got {table.shape}")
    if not np.isfinite(table).all() or (table < 0).any() or (table != np.round(table)).any():
        raise InputError("counts must hold non-negative whole numbers of ratings")
    n_i = table.sum(axis=1)
    if (n_i < 2).any():
        i = int(np.flatnonzero(n_i < 2)[0])
        raise InputError(f"counts row {i} has {int(n_i[i])} rating(s); agreement needs 2")
    p_i = ((table**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = table.sum(axis=0) / n_i.sum()
    p_e = float(p_j @ p_j)
    if p_e >= 1.0:
        return float("nan")
    return (p_bar - p_e) / (1.0 - p_e)
