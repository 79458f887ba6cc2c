"""The label of a multi-label project: a set of classes, stored as a JSON list.

A label event of a multi-label project holds the chosen classes as a JSON list in the
project's class order (``["red", "blue"]``); an empty list says that no class applies, which
a project may forbid (``allow_empty = false``). This module turns such values into lists and
indicator matrices and refuses anything else with one line naming where the value came from
(a file's row, an item) and what is wrong. It never reads nor writes the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from active_labeling.errors import InputError


def encode_label_set(labels: Iterable[str], classes: Sequence[str]) -> str:
    """The stored form of a label set: the chosen classes as a JSON list, in class order.

    Examples
    --------
    >>> encode_label_set(["dog", "cat", "dog"], ["cat", "bird", "dog"])
    '["cat", "dog"]'
    >>> encode_label_set([], ["cat", "dog"])
    '[]'
    """
    chosen = set(labels)
    return json.dumps([c for c in classes if c in chosen])


def parse_label_set(
    value, classes: Sequence[str], *, allow_empty: bool = True, where: str = "label"
) -> list[str]:
    """The classes of one stored label set, checked against the project's classes.

    Parameters
    ----------
    value : str
        A JSON list of class names, as a multi-label event stores it.
    classes : sequence of str
        The project's classes.
    allow_empty : bool
        Whether an empty list (no class applies) is an answer (``allow_empty`` of the project).
    where : str
        What names the value in an error: ``"labels.csv row 4"``, ``"item 'I7'"``.

    Raises
    ------
    InputError
        The value is not a JSON list of strings, holds a class outside ``classes``, or is
        empty where the project forbids it.

    Examples
    --------
    >>> parse_label_set('["blue", "red"]', ["red", "green", "blue"])
    ['blue', 'red']
    >>> parse_label_set('["red", "pink"]', ["red", "blue"], where="item 'I7'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    active_labeling.errors.InputError: item 'I7': label '["red", "pink"]': class 'pink' is not ...
    """
    text = value if isinstance(value, str) else None
    try:
        labels = json.loads(text) if text is not None else None
    except ValueError:
        labels = None
    if not isinstance(labels, list) or not all(isinstance(c, str) for c in labels):
        raise InputError(
            f"{where}: label {value!r} is not a label set: a multi-label project stores a JSON "
            f'list of its classes ({", ".join(classes)}), such as ["{classes[0]}"]'
            if classes
            else f"{where}: label {value!r} is not a JSON list of classes"
        )
    outside = [c for c in labels if c not in classes]
    if outside:
        raise InputError(
            f"{where}: label {value!r}: class {outside[0]!r} is not one of the project's "
            f"classes ({', '.join(classes)})"
        )
    if not labels and not allow_empty:
        raise InputError(
            f"{where}: the label set is empty, and the project forbids it (allow_empty = false "
            "under [project] in project.toml): choose at least one class"
        )
    return labels


def label_set_matrix(
    values: Sequence,
    classes: Sequence[str],
    *,
    allow_empty: bool = True,
    where: Callable[[int], str] = lambda i: f"row {i}",
) -> np.ndarray:
    """The indicator matrix of stored label sets: row i, column j is 1 when value i holds
    class j (the columns follow ``classes``).

    ``where(i)`` names value ``i`` in an error (see :func:`parse_label_set`).

    Examples
    --------
    >>> label_set_matrix(['["a"]', '["b", "a"]', '[]'], ["a", "b"]).tolist()
    [[1, 0], [1, 1], [0, 0]]
    """
    column = {c: j for j, c in enumerate(classes)}
    Y = np.zeros((len(values), len(classes)), dtype=np.int64)
    for i, value in enumerate(values):
        for c in parse_label_set(value, classes, allow_empty=allow_empty, where=where(i)):
            Y[i, column[c]] = 1
    return Y


def label_sets_of(Y: np.ndarray, classes: Sequence[str]) -> list[list[str]]:
    """The class lists of an indicator matrix (the inverse of :func:`label_set_matrix`).

    Examples
    --------
    >>> label_sets_of(np.array([[1, 0], [1, 1], [0, 0]]), ["a", "b"])
    [['a'], ['a', 'b'], []]
    """
    names = list(classes)
    return [[names[j] for j in np.flatnonzero(row)] for row in np.asarray(Y)]
