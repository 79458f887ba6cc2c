"""Simulated labelers in the experiment harness: a team with their own error rates (one
adversarial), overlap and consensus, and the error-detection measures, over seeds."""

from __future__ import annotations

import numpy as np
import pytest

from active_labeling.errors import InputError
from active_labeling.experiment.config import parse_config
from active_labeling.experiment.labelers import LabelersSpec, simulate_team
from active_labeling.experiment.runner import create_experiment, experiment_results, run_experiment

TEAM = [
    {"name": "careful", "accuracy": 0.95},
    {"name": "fair", "accuracy": 0.8},
    {"name": "careless", "accuracy": 0.7},
]


def test_each_labeler_errs_at_their_rate_and_the_adversary_always_the_same_way():
    codes = np.random.default_rng(1).integers(0, 3, 6000)
    spec = LabelersSpec(
        team=[*TEAM, {"name": "mole", "accuracy": 0.2, "adversarial": True}], overlap=0.3
    )
    team = simulate_team(spec, codes, np.random.default_rng(0))
    given = team.votes >= 0
    for j, labeler in enumerate(spec.team):
        right = (team.votes[given[:, j], j] == codes[given[:, j]]).mean()
        assert right == pytest.approx(labeler.accuracy, abs=0.03), labeler.name
    mole = given[:, 3] & (team.votes[:, 3] != codes)
    assert (team.votes[mole, 3] == (codes[mole] + 1) % 3).all()  # systematic, not random
    assert team.overlap_rows.mean() == pytest.approx(0.3, abs=0.02)
    assert given.sum(axis=1).max() == 2 and given.sum(axis=1).min() == 1
    # The same seed, the same team; the loop learns from the consensus.
    again = simulate_team(spec, codes, np.random.default_rng(0))
    assert (again.votes == team.votes).all() and (again.revealed == team.revealed).all()


def test_dawid_skene_beats_the_majority_with_three_labelers_of_70_80_95():
    codes = np.random.default_rng(2).integers(0, 3, 3000)
    right = {}
    for method in ("majority", "dawid_skene"):
        spec = LabelersSpec(team=TEAM, overlap=1.0, per_overlap=3, consensus=method)
        team = simulate_team(spec, codes, np.random.default_rng(0))
        right[method] = (team.revealed == codes).mean()
    assert right["dawid_skene"] > right["majority"] > 0.9


BASE = """
data = { sklearn = "iris" }
model = { name = "logistic_regression", standardize = true }
strategies = ["random", "margin"]
initial = { size = 9, method = "stratified" }
batch_size = 6
n_rounds = 3
seeds = 2
monitoring = { enabled = false }
"""


def test_an_experiment_with_a_team_logs_consensus_and_error_detection(tmp_path):
    config = tmp_path / "team.toml"
    config.write_text(
        BASE
        + '\n[labelers]\noverlap = 0.4\nconsensus = "dawid_skene"\nteam = [\n'
        + '  { name = "careful", accuracy = 0.95 },\n'
        + '  { name = "careless", accuracy = 0.6 },\n'
        + '  { name = "mole", accuracy = 0.3, adversarial = true },\n]\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    create_experiment(config, out)
    run_experiment(out, n_jobs=1, progress=False)
    results = experiment_results(out)
    for name in (
        "mislabeled_ratio",
        "consensus_accuracy",
        "suspect_precision",
        "suspect_recall",
        "accuracy_after_review",
    ):
        assert name in results.columns, name
    last = results[results["iteration"] == 3]
    assert set(last["strategy"]) == {"random", "margin"} and len(last) == 4  # 2 x 2 seeds
    assert (last["mislabeled_ratio"] > 0).all()  # the team makes mistakes the loop learns
    assert last["consensus_accuracy"].between(0, 1).all()
    assert last["suspect_recall"].dropna().between(0, 1).all()
    # The strategies of a seed share the team: the same labels for the same rows.
    again = tmp_path / "again"
    create_experiment(config, again)
    run_experiment(again, n_jobs=1, progress=False)
    assert experiment_results(again).equals(results)


def test_bad_team_settings_are_named():
    with pytest.raises(InputError, match=r"labelers\.team\.0\.accuracy"):
        parse_config(BASE + '\n[labelers]\nteam = [{ name = "a", accuracy = 1.5 }]\n')
    with pytest.raises(InputError, match="per_overlap = 3 labelers per overlap row"):
        parse_config(BASE + '\n[labelers]\nper_overlap = 3\nteam = [{ name = "a", accuracy = 1 },'
                     ' { name = "b", accuracy = 1 }]\n')  # fmt: skip
    with pytest.raises(InputError, match=r"label_noise .* or labelers, not both"):
        parse_config(
            BASE
            + 'label_noise = 0.1\n[labelers]\noverlap = 0\nteam = [{ name = "a", accuracy = 1 }]\n'
        )
    with pytest.raises(InputError, match="same name"):
        parse_config(BASE + '\n[labelers]\nteam = [{ name = "a", accuracy = 1 },'
                     ' { name = "a", accuracy = 1 }]\n')  # fmt: skip
