"""Which strategy next? The tutorial's recommended procedure as rules with reasons.

Abraham 2020 (the tutorial this project grew from, "Recommended procedure") reads the
monitoring metrics of the last batches:

1. *keep exploring* while a random batch would explore more than the chosen strategy does
   (``exploration_distance`` below ``random_exploration_distance``);
2. *pick easier batches* when the contradictions do not decrease (the strategy may be
   stuck on rows no model gets right, such as noisy regions);
3. *pick harder batches* when the batch agreement is above a random batch's (the model and
   a 1-nearest-neighbour rule already agree on the rows chosen: they teach little);
4. *stop* when the contradictions are low (that is the stopping advice's call).

:func:`strategy_advice` applies them to a metric history and names the strategy to move to,
one step along a ladder from the easiest batches (random) to the hardest (margin). The
``auto`` strategy follows this advice round after round; ``docs/advice-study.md`` measures
whether following it beats keeping a strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from active_labeling.errors import InputError
from active_labeling.metrics.advice import ContradictionsLow, History

#: From the easiest batches to the hardest: representative, diverse, uncertain and diverse,
#: uncertain. Moving "easier" or "harder" is one step along it.
LADDER = ("random", "kcenter", "wkmeans", "margin")
#: The same for multi-label models: uncertainty is the mean binary uncertainty.
MULTI_LABEL_LADDER = ("random", "kcenter", "wkmeans", "mean_binary_uncertainty")
#: Where each library strategy sits on the ladder.
RUNG = {
    "random": 0,
    "kmeans": 0,
    "minibatch_kmeans": 0,
    "typiclust": 0,
    "kcenter": 1,
    "wkmeans": 2,
    "iwkmeans": 2,
    "badge": 2,
    "margin": 3,
    "least_confidence": 3,
    "entropy": 3,
    "committee": 3,
    "mean_binary_uncertainty": 3,
    "max_binary_uncertainty": 3,
    "mmc": 3,
    "label_cardinality": 3,
}
#: For "keep exploring": the strategy that covers the space more, from each rung.
EXPLORE = {0: "random", 1: "kcenter", 2: "kcenter", 3: "wkmeans"}

ACTIONS = ("keep", "explore", "easier", "harder")
#: The procedure's signals, by the action each leads to.
SIGNAL_NAMES = ("easier", "explore", "harder")
#: The signals followed unless told otherwise. "explore" is left out: in the advice study
#: (docs/strategy-study.md, 11 data sets, 20 seeds) following it from margin lost on 4 data
#: sets and won on none, and with it ``auto`` fell 0.38 points below margin on average.
DEFAULT_SIGNALS = ("easier", "harder")


@dataclass(frozen=True)
class StrategyAdvice:
    """The action, the strategy it leads to, and the reasons in words."""

    action: str
    strategy: str
    reasons: list[str] = field(default_factory=list)


def _last(history: History, name: str, k: int) -> np.ndarray | None:
    values = history.values.get(name)
    if values is None:
        return None
    values = values[-k:]
    return None if values.shape[0] < k or np.isnan(values).any() else values


def strategy_advice(
    history: History,
    strategy: str,
    *,
    k: int = 2,
    exploration_margin: float = 0.1,
    agreement_margin: float = 0.1,
    stuck: ContradictionsLow | None = None,
    signals: tuple[str, ...] = DEFAULT_SIGNALS,
    ladder: tuple[str, ...] = LADDER,
) -> StrategyAdvice:
    """What the recommended procedure says after the last model version.

    Parameters
    ----------
    history : History
        The monitoring metrics of the model (``metrics.advice.History``); the signals read
        are ``exploration_distance`` and ``random_exploration_distance``,
        ``batch_agreement`` and ``random_batch_agreement``, and ``contradiction_ratio``.
    strategy : str
        The strategy that chose the last batches.
    k : int
        A signal counts when it held for each of the last ``k`` versions.
    exploration_margin : float
        "Explores less than random": ``exploration_distance < (1 - margin) * random's``.
    agreement_margin : float
        "Easier than random": ``batch_agreement > random's + margin`` (kappa points).
    signals : tuple of str
        Which of the procedure's signals to follow (``SIGNAL_NAMES``: stuck contradictions
        lead to "easier", low exploration to "explore", high agreement to "harder");
        default ``DEFAULT_SIGNALS``, without "explore" (see above).
    stuck : ContradictionsLow, optional
        The contradiction rule whose "stuck" flag means "pick easier batches"; default:
        above 5% of the sample for 3 versions, down by less than a tenth (contradictions of
        one or two percent late in a project are the usual tail, not a stuck strategy).
    ladder : tuple of str
        The strategy of each rung, easiest first: ``LADDER``, or ``MULTI_LABEL_LADDER`` for
        a multi-label model.

    Examples
    --------
    >>> h = History(np.array([10.0, 20, 30]), {
    ...     "exploration_distance": np.array([np.nan, 0.2, 0.2]),
    ...     "random_exploration_distance": np.array([np.nan, 0.5, 0.45]),
    ... })
    >>> advice = strategy_advice(h, "margin", signals=SIGNAL_NAMES)
    >>> advice.action, advice.strategy
    ('explore', 'wkmeans')
    >>> strategy_advice(h, "margin").action   # the exploration signal is off by default
    'keep'

    """
    if strategy not in RUNG:
        raise InputError(f"strategy {strategy!r} has no place on the ladder; one of {sorted(RUNG)}")
    unknown = sorted(set(signals) - set(SIGNAL_NAMES))
    if unknown:
        raise InputError(f"unknown signal {unknown[0]!r}; choose from {', '.join(SIGNAL_NAMES)}")
    rung = RUNG[strategy]
    reasons = []
    stuck_rule = stuck or ContradictionsLow(k=3, threshold=0.05)
    vote = stuck_rule.vote(history) if "easier" in signals else None
    if vote is not None and vote.stuck:
        target = ladder[max(rung - 1, 0)]
        reasons.append(f"{vote.reason}: pick easier batches ({target})")
        return StrategyAdvice("easier" if target != strategy else "keep", target, reasons)

    ours = _last(history, "exploration_distance", k)
    theirs = _last(history, "random_exploration_distance", k)
    if "explore" in signals and ours is not None and theirs is not None:
        if (ours < (1 - exploration_margin) * theirs).all():
            target = EXPLORE[rung]
            reasons.append(
                f"the last {k} batches reached {_arrow(ours)} from the labeled rows, a random "
                f"batch would have reached {_arrow(theirs)}: keep exploring ({target})"
            )
            return StrategyAdvice("explore" if target != strategy else "keep", target, reasons)
        reasons.append(
            f"exploration {_arrow(ours)} vs {_arrow(theirs)} for a random batch: the strategy "
            "explores enough"
        )

    ours = _last(history, "batch_agreement", k)
    theirs = _last(history, "random_batch_agreement", k)
    if "harder" in signals and ours is not None and theirs is not None:
        if (ours > theirs + agreement_margin).all():
            target = ladder[min(rung + 1, len(ladder) - 1)]
            reasons.append(
                f"the model and a 1-NN rule agree more on the last {k} batches (kappa "
                f"{_arrow(ours)}) than on random rows ({_arrow(theirs)}): the batches are easy, "
                f"pick harder ones ({target})"
            )
            return StrategyAdvice("harder" if target != strategy else "keep", target, reasons)
        reasons.append(
            f"batch agreement {_arrow(ours)} vs {_arrow(theirs)} on random rows: the batches "
            "are not easier than random"
        )
    if not reasons:
        reasons.append("not enough history for the strategy advice yet")
    return StrategyAdvice("keep", strategy, reasons)


def _arrow(values) -> str:
    return " → ".join(f"{v:.3g}" for v in values)
