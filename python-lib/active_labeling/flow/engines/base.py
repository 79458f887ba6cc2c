"""What every engine of the query sampler shares: the job it is given and what it returns.

The query sampler prepares a :class:`QueryJob` (the saved model, the strategy's sampler
fitted on the labeled set, the labeled ids) and hands it to an engine, which returns a
:class:`Selection`: item ids best first, their scores, how many unlabeled rows it scored.
Writing the queue generation stays with the query sampler, so every engine lands in the
same table. This module must never import an engine's library (Dask, Spark).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from active_labeling.errors import InputError
from active_labeling.samplers.base import preprocessed

#: Strategies that score each row on its own: every engine selects exactly the same rows.
SCORED_STRATEGIES = frozenset(
    {
        "random",
        "least_confidence",
        "margin",
        "entropy",
        "committee",
        "mean_binary_uncertainty",
        "max_binary_uncertainty",
        "mmc",
        "label_cardinality",
    }
)
#: Scored strategies fitted on the labeled rows themselves (not only on the model): the
#: workers fit them again from the same rows (the committee's members, MMC's label-count
#: model, the labeled items' mean number of classes).
FITTED_ON_LABELS = frozenset({"committee", "mmc", "label_cardinality"})


def model_input(pipeline, frame: pd.DataFrame, feature_space: bool):
    """What the sampler sees for ``frame``: the frame itself, or the model's feature space.

    Feature-space strategies (distances between rows) see the output of the pipeline's
    preprocessing as a dense float64 array; the others see the raw frame and call the whole
    model. Either way float32 columns are read as float64: in float32 a row's score may
    round differently with the rows batched around it (BLAS kernels), by about 1e-7, which
    would make the ranking depend on where chunks or partitions start; in float64 that
    noise is 1e-16, far below any gap between scores.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> frame = pd.DataFrame({"a": [0.0, 2.0, 4.0], "b": [1.0, 1.0, 1.0]})
    >>> model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, [0, 0, 1])
    >>> model_input(model, frame, feature_space=True)[:, 0].round(2)
    array([-1.22,  0.  ,  1.22])
    >>> model_input(model, frame, feature_space=False) is frame
    True
    """
    narrow = [c for c, kind in frame.dtypes.items() if kind in (np.float32, np.float16)]
    if narrow:
        frame = frame.astype(dict.fromkeys(narrow, np.float64))
    if not feature_space:
        return frame
    return preprocessed(pipeline, frame, np.float64)


@dataclass
class QueryJob:
    """One run of the query sampler, ready for an engine.

    ``sampler`` is the strategy built as the local engine uses it (on the whole pipeline,
    or on its final estimator in feature space) and already fitted on the labeled set.
    """

    con: Any
    project: Any
    dataset: str
    columns: list[str]
    params: Any  # QuerySamplerParams
    saved: Any  # SavedModel
    feature_space: bool
    sampler: Any
    labeled_frame: pd.DataFrame
    #: One label per labeled row; for a multi-label model an (n, k) indicator matrix.
    labels: Any
    labeled_ids: pa.Array
    progress: Callable[[int], None] | None = None

    def model_input(self, frame: pd.DataFrame):
        return model_input(self.saved.pipeline, frame, self.feature_space)


@dataclass
class Selection:
    """What an engine selected: item ids best first, their scores (None if unscored)."""

    item_ids: list[str]
    scores: np.ndarray | None
    pool_rows: int
    #: Engine figures for the record and the benchmark: partitions, seconds per partition...
    stats: dict[str, Any] = field(default_factory=dict)


class QueryEngine(ABC):
    """Runs a :class:`QueryJob` somewhere and returns a :class:`Selection`."""

    #: The value of the recipe's ``engine`` param.
    name: str = ""

    @abstractmethod
    def select(self, job: QueryJob) -> Selection:
        """Score the unlabeled rows of ``job.dataset`` and select ``job.params.queue_size``."""


def nothing_to_queue(dataset: str) -> InputError:
    return InputError(f"every item of dataset {dataset!r} is labeled: there is nothing to queue")
