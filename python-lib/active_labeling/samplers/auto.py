"""``strategy = "auto"``: the strategy of each round, chosen from the project's own evidence.

No strategy wins everywhere (``docs/strategy-study.md``), so ``auto`` starts from a strong
default and follows the strategy advice (``metrics.strategy_advice``: the tutorial's
recommended procedure) round after round: pick easier batches when the contradictions are
stuck, harder ones when the model and a nearest-neighbour rule already agree on the
batches (and, if asked, keep exploring while a random batch would explore more). After a
switch it waits ``k`` rounds, so that the signals it reads come from the strategy it chose.
Every choice is logged with its reasons; the same history gives the same choice (no
randomness of its own).

It is not a sampler: the query-sampler recipe and the experiment harness ask it which
strategy to run, then build that sampler as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from active_labeling.errors import InputError
from active_labeling.metrics.advice import History
from active_labeling.metrics.strategy_advice import (
    DEFAULT_SIGNALS,
    LADDER,
    MULTI_LABEL_LADDER,
    RUNG,
    strategy_advice,
)


@dataclass(frozen=True)
class AutoChoice:
    """The strategy for the next batch, what moved there, and why."""

    strategy: str
    action: str
    reasons: list[str] = field(default_factory=list)


class AutoStrategy:
    """Choose each round's strategy from the monitoring metrics.

    Parameters
    ----------
    start : str, default="margin"
        The strategy of the first rounds (margin: the strongest single strategy of the
        strategy study, never significantly below random there).
    k : int, default=2
        Rounds a signal must hold, and rounds to wait after a switch.
    exploration_margin, agreement_margin : float, default=0.1
        The margins of :func:`~active_labeling.metrics.strategy_advice.strategy_advice`.
    signals : list of str, default=("easier", "harder")
        Which of the procedure's signals auto follows; "explore" too if listed (it lost
        against keeping margin in the advice study, so it is off by default).

    Examples
    --------
    >>> import numpy as np
    >>> auto = AutoStrategy(signals=["easier", "explore", "harder"])
    >>> h = History(np.array([10.0, 20, 30]), {
    ...     "exploration_distance": np.array([np.nan, 0.2, 0.2]),
    ...     "random_exploration_distance": np.array([np.nan, 0.5, 0.45]),
    ... })
    >>> auto.choose(h, ["margin", "margin"]).strategy
    'wkmeans'
    >>> auto.choose(h, ["margin", "wkmeans"]).strategy   # just switched: wait
    'wkmeans'
    """

    def __init__(
        self,
        start: str = "margin",
        *,
        k: int = 2,
        exploration_margin: float = 0.1,
        agreement_margin: float = 0.1,
        signals=DEFAULT_SIGNALS,
    ):
        self.start = start
        self.k = k
        self.exploration_margin = exploration_margin
        self.agreement_margin = agreement_margin
        self.signals = signals

    def _check(self) -> None:
        if self.start not in RUNG:
            raise InputError(f"auto: start must be one of {sorted(RUNG)}, got {self.start!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InputError(f"auto: k must be a positive integer, got {self.k!r}")
        for name in ("exploration_margin", "agreement_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise InputError(f"auto: {name} must be a number >= 0, got {value!r}")

    def choose(
        self, history: History | None, previous: list[str], *, multilabel: bool = False
    ) -> AutoChoice:
        """The strategy for the next batch.

        Parameters
        ----------
        history : History or None
            The monitoring metrics of the model versions so far (None: none yet).
        previous : list of str
            The strategy that chose each batch so far, oldest first.
        multilabel : bool
            The model is multi-label: the ladder's uncertainty rung is the mean binary
            uncertainty (``MULTI_LABEL_LADDER``), and a ``start`` of margin starts there.
        """
        self._check()
        start = self.start
        if multilabel and start == "margin":
            start = MULTI_LABEL_LADDER[-1]
        if not previous:
            return AutoChoice(start, "start", [f"auto starts with {start}"])
        current = previous[-1]
        run = 0
        for strategy in reversed(previous):
            if strategy != current:
                break
            run += 1
        if history is None or run < self.k:
            return AutoChoice(
                current,
                "keep",
                [f"{current} chose {run} batch(es); auto reads {self.k} before it changes"],
            )
        advice = strategy_advice(
            history,
            current,
            k=self.k,
            exploration_margin=self.exploration_margin,
            agreement_margin=self.agreement_margin,
            signals=tuple(self.signals),
            ladder=MULTI_LABEL_LADDER if multilabel else LADDER,
        )
        return AutoChoice(advice.strategy, advice.action, advice.reasons)
