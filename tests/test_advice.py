"""Stopping rules, the policy that combines them, the cost projection, and the replay of the
advice over simulated runs against the truth."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from active_labeling.errors import InputError
from active_labeling.experiment.advice import (
    RunHistory,
    evaluate,
    hindsight_stop,
    meets_targets,
    run_histories,
    summarize,
    wilson_interval,
    write_advice_report,
)
from active_labeling.metrics import (
    AdvicePolicy,
    History,
    advise,
    cost_projection,
    first_stop,
    make_rule,
    sample_uncertainty,
    stop_set_kappa,
)
from active_labeling.metrics.advice import (
    ClassificationChange,
    ContradictionsLow,
    CostBased,
    HoldoutPlateau,
    MaxConfidence,
    OverallUncertainty,
    StabilizingPredictions,
)
from active_labeling.metrics.cost import fit_learning_curve

NAN = math.nan


def history(**series) -> History:
    n = len(next(iter(series.values())))
    return History(
        10.0 * np.arange(1, n + 1), {k: np.asarray(v, dtype=float) for k, v in series.items()}
    )


# -- the signals ------------------------------------------------------------------------------


def test_stop_set_kappa_by_hand_and_when_both_models_give_one_class():
    # 3 of 4 agree (p_o = .75); shares (3/4, 1/4) and (2/4, 2/4): p_e = 3/8 + 1/8 = 0.5
    assert stop_set_kappa(["a", "a", "a", "b"], ["a", "a", "b", "b"]) == pytest.approx(0.5)
    assert stop_set_kappa(["a"] * 5, ["a"] * 5) == 1.0
    assert stop_set_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)


def test_sample_uncertainty_is_the_mean_and_max_least_confidence():
    mean, largest = sample_uncertainty([[0.9, 0.1], [0.5, 0.5], [0.7, 0.3]])
    assert mean == pytest.approx((0.1 + 0.5 + 0.3) / 3) and largest == pytest.approx(0.5)
    with pytest.raises(InputError, match="empty"):
        sample_uncertainty(np.empty((0, 2)))


# -- the rules --------------------------------------------------------------------------------


def test_stabilizing_predictions_needs_the_mean_of_its_window():
    rule = StabilizingPredictions(window=3, threshold=0.99)
    assert rule.vote(history(stop_set_kappa=[NAN, 0.9, 0.99])).stop is None  # 2 values
    vote = rule.vote(history(stop_set_kappa=[NAN, 0.9, 0.99, 0.995, 1.0]))
    assert vote.stop and "mean 0.9950" in vote.reason and "Bloodgood" in vote.reason
    # 0.98, 0.99, 1.0: mean 0.99, at the threshold, stops; 0.97 in the window does not
    assert rule.vote(history(stop_set_kappa=[0.98, 0.99, 1.0])).stop
    assert not rule.vote(history(stop_set_kappa=[0.97, 0.99, 1.0])).stop


def test_classification_change_needs_no_change_at_all():
    rule = ClassificationChange(rounds=2)
    assert rule.vote(history(contradiction_ratio=[NAN, 0.01, 0.0, 0.0])).stop
    assert not rule.vote(history(contradiction_ratio=[NAN, 0.0, 0.001, 0.0])).stop


def test_uncertainty_rules_read_their_own_metric():
    h = history(overall_uncertainty=[0.3, 0.1, 0.04], max_uncertainty=[0.5, 0.45, 0.3])
    assert OverallUncertainty(threshold=0.05).vote(h).stop
    assert not OverallUncertainty(threshold=0.05, rounds=2).vote(h).stop
    assert not MaxConfidence(threshold=0.2).vote(h).stop
    assert MaxConfidence(threshold=0.3).vote(h).stop
    # A metric never measured: the rule does not vote at all.
    assert OverallUncertainty().vote(history(max_uncertainty=[0.1])) is None


def test_holdout_plateau_compares_the_recent_best_with_the_best_before():
    rule = HoldoutPlateau(k=2, min_gain=0.01)
    assert rule.vote(history(holdout_accuracy=[0.7, 0.8, 0.805, 0.79])).stop
    assert not rule.vote(history(holdout_accuracy=[0.7, 0.8, 0.79, 0.82])).stop


def test_make_rule_refuses_unknown_rules_and_parameters():
    assert make_rule("stabilizing_predictions", window=2).window == 2
    with pytest.raises(InputError, match="unknown stopping rule 'magic'"):
        make_rule("magic")
    with pytest.raises(InputError, match="has no parameter 'windw'"):
        make_rule("stabilizing_predictions", windw=2)
    with pytest.raises(InputError, match=r"stabilizing_predictions\.window must be a positive"):
        make_rule("stabilizing_predictions", window=0)


# -- the cost projection ----------------------------------------------------------------------


def test_the_learning_curve_recovers_an_inverse_power_law():
    n = np.array([20, 40, 80, 160, 320], dtype=float)
    errors = 0.05 + 2.0 * n**-0.7
    curve = fit_learning_curve(n, errors)
    assert curve.floor == pytest.approx(0.05, abs=1e-3)
    assert curve.exponent == pytest.approx(0.7, abs=1e-2)
    assert curve.error(640) == pytest.approx(0.05 + 2.0 * 640**-0.7, abs=1e-3)


def test_cost_projection_weighs_the_next_batch_against_its_cost():
    n = [20, 40, 60, 80, 100]
    accuracy = [1 - (0.1 + 2.0 * x**-0.7) for x in n]
    gain = (0.1 + 2.0 * 100**-0.7) - (0.1 + 2.0 * 120**-0.7)  # about 0.0065
    # The next 20 labels cost 20; worth gain x future x error_cost.
    cheap = cost_projection(n, accuracy, label_cost=1, error_cost=1, future_predictions=1e5)
    assert cheap.batch_size == 20 and cheap.batch_cost == 20
    assert cheap.value == pytest.approx(gain * 1e5, rel=0.05) and not cheap.stop
    dear = cost_projection(n, accuracy, label_cost=1, error_cost=1, future_predictions=1e3)
    assert dear.stop and "worth less than their cost" in dear.describe()
    vote = CostBased(future_predictions=1e3).vote(history(mean_confidence=accuracy))
    assert vote.stop and "the model's confidence" in vote.reason
    with pytest.raises(InputError, match="label_cost"):
        cost_projection(n, accuracy, label_cost=-1)


# -- the policy ---------------------------------------------------------------------------------


def test_the_policy_stops_when_its_stop_rules_agree_and_watch_rules_only_check():
    policy = AdvicePolicy(
        stop_rules=(ContradictionsLow(k=2), StabilizingPredictions(window=2, threshold=0.99)),
        watch_rules=(OverallUncertainty(threshold=0.5),),
    )
    both = history(contradiction_ratio=[NAN, 0.005, 0.0], stop_set_kappa=[NAN, 0.99, 1.0])
    assert advise(both, policy).advice == "stop"
    one = history(contradiction_ratio=[NAN, 0.005, 0.0], stop_set_kappa=[NAN, 0.9, 0.95])
    result = advise(one, policy)
    assert result.advice == "check"
    assert [v["vote"] for v in result.votes_json()] == ["stop", "go on"]
    assert advise(one, AdvicePolicy(policy.stop_rules, quorum=0.5)).advice == "stop"
    watch_only = history(overall_uncertainty=[0.1, 0.1])
    assert advise(watch_only, policy).advice == "check"
    with pytest.raises(InputError, match="quorum"):
        AdvicePolicy(policy.stop_rules, quorum=1.5)
    with pytest.raises(InputError, match="at least one stop rule"):
        AdvicePolicy(())


def test_first_stop_uses_only_what_was_known_at_each_version():
    h = history(contradiction_ratio=[NAN, 0.3, 0.005, 0.004, 0.003, 0.2])
    policy = AdvicePolicy((ContradictionsLow(k=3),))
    assert first_stop(h, policy) == 4  # not 5, although the last value is high again
    assert first_stop(h.upto(3), policy) is None


def test_the_long_form_history_keeps_n_labels_with_each_version():
    long = pd.DataFrame(
        {
            "model_version": ["1", "2", "2", "3"],
            "n_labels": [10, 20, 20, 35],
            "metric": ["mean_confidence", "mean_confidence", "stop_set_kappa", "mean_confidence"],
            "value": [0.7, 0.8, 0.9, 0.85],
        }
    )
    h = History.from_frame(long)
    assert h.n_labels.tolist() == [10, 20, 35]
    assert np.isnan(h.values["stop_set_kappa"][0]) and h.values["stop_set_kappa"][1] == 0.9
    assert h.pairs("mean_confidence")[0].tolist() == [10, 20, 35]


# -- the evaluation -----------------------------------------------------------------------------


def _run(accuracy, contradictions, dataset="d", seed=0) -> RunHistory:
    h = history(contradiction_ratio=contradictions)
    return RunHistory(dataset, "margin", seed, -1, h, np.asarray(accuracy, dtype=float))


def test_hindsight_is_the_first_iteration_within_one_point_of_the_end():
    assert hindsight_stop(np.array([0.5, 0.7, 0.895, 0.91, 0.9])) == 2
    assert hindsight_stop(np.array([0.9, 0.5, 0.9])) == 0


def test_evaluate_counts_savings_losses_and_premature_stops_by_hand():
    policy = {"c": AdvicePolicy((ContradictionsLow(k=2, threshold=0.01),))}
    # Stops at iteration 3 (values 0.005, 0.0): 40 of 100 labels, accuracy 0.80 vs 0.90 end.
    early = _run(
        [0.5, 0.7, 0.78, 0.80, 0.84, 0.86, 0.88, 0.89, 0.9, 0.9],
        [NAN, 0.2, 0.005, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    )
    never = _run([0.5, 0.6, 0.7], [NAN, 0.2, 0.3], seed=1)
    outcomes = evaluate([early, never], policy, variants=("no holdout",))
    first, second = outcomes.iloc[0], outcomes.iloc[1]
    assert first["stopped"] and first["n_stop"] == 40 and first["n_final"] == 100
    assert first["saving"] == pytest.approx(0.6)
    assert first["loss_final"] == pytest.approx(10.0) and first["premature_2"]
    assert first["hindsight_saving"] == pytest.approx(0.2)  # 0.89 at 80 labels
    assert not second["stopped"] and second["saving"] == 0 and second["loss_final"] == 0
    summary = summarize(outcomes).set_index(["dataset", "policy"])
    overall = summary.loc[("all", "c")]
    assert overall["runs"] == 2 and overall["premature_1"] == 0.5
    assert overall["big_runs"] == 1 and overall["big_stopped"] == 1.0
    assert overall["big_saving_ratio"] == pytest.approx(0.6 / 0.2)
    assert not meets_targets(overall)


def test_wilson_interval_matches_the_formula():
    low, high = wilson_interval(5, 100)
    assert (round(low, 4), round(high, 4)) == (0.0215, 0.1118)


def test_the_advice_command_replays_a_small_experiment(tmp_path, capsys):
    from active_labeling.cli import main

    config = tmp_path / "iris.toml"
    config.write_text(
        'name = "iris"\nseeds = 2\nbatch_size = 5\nn_rounds = 6\n'
        'strategies = ["random", "margin"]\ninitial = { size = 6, method = "stratified" }\n'
        '[data]\nsklearn = "iris"\n[model]\nname = "logistic_regression"\nstandardize = true\n'
        "[monitoring]\nholdout_size = 30\n",
        encoding="utf-8",
    )
    assert (
        main(
            [
                "experiment",
                "run",
                str(config),
                "--out",
                str(tmp_path / "exp"),
                "--quiet",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    runs = run_histories(tmp_path / "exp")
    assert len(runs) == 4 and "holdout_accuracy" in runs[0].history.values
    assert "stop_set_kappa" in runs[0].history.values
    assert main(["experiment", "advice", str(tmp_path / "exp")]) == 0
    out = capsys.readouterr().out
    assert "stabilizing_predictions" in out and "hindsight" in out
    report = tmp_path / "exp" / "report"
    assert (report / "advice-pareto.png").stat().st_size > 0
    table = pd.read_csv(report / "advice.csv")
    assert set(table["variant"]) == {"no holdout", "holdout"}
    assert "holdout_plateau" not in set(table.loc[table["variant"] == "no holdout", "policy"])
    assert (table["n_stop"] <= table["n_final"]).all()
    path, summary = write_advice_report([tmp_path / "exp"], tmp_path / "elsewhere")
    assert path.parent == tmp_path / "elsewhere" and (summary["runs"] > 0).all()


def test_the_advice_command_refuses_runs_without_monitoring(tmp_path):
    from active_labeling.experiment import create_experiment, run_experiment

    config = tmp_path / "quiet.toml"
    config.write_text(
        'seeds = 1\nbatch_size = 5\nn_rounds = 2\nstrategies = ["random"]\n'
        'initial = { size = 6, method = "stratified" }\nmonitoring = { enabled = false }\n'
        '[data]\nsklearn = "iris"\n',
        encoding="utf-8",
    )
    create_experiment(config, tmp_path / "exp")
    run_experiment(tmp_path / "exp", n_jobs=1, progress=False)
    with pytest.raises(InputError, match="monitoring disabled"):
        run_histories(tmp_path / "exp")


# -- strategy advice and auto -------------------------------------------------------------------


def test_strategy_advice_follows_the_recommended_procedure():
    from active_labeling.metrics.strategy_advice import SIGNAL_NAMES, strategy_advice

    explore = history(
        exploration_distance=[NAN, 0.2, 0.2], random_exploration_distance=[NAN, 0.5, 0.45]
    )
    assert strategy_advice(explore, "margin").action == "keep"  # not followed by default
    with pytest.raises(InputError, match="unknown signal 'wander'"):
        strategy_advice(explore, "margin", signals=("wander",))
    explore_too = dict(signals=SIGNAL_NAMES)
    advice = strategy_advice(explore, "margin", **explore_too)
    assert (advice.action, advice.strategy) == ("explore", "wkmeans")
    assert strategy_advice(explore, "kcenter", **explore_too).action == "keep"  # the explorer
    stuck = history(contradiction_ratio=[NAN, 0.30, 0.29, 0.30])
    advice = strategy_advice(stuck, "margin")
    assert (advice.action, advice.strategy) == ("easier", "wkmeans")
    assert "stuck" in advice.reasons[0]
    late_tail = history(contradiction_ratio=[NAN, 0.02, 0.019, 0.02])  # 2%: not stuck
    assert strategy_advice(late_tail, "margin").action == "keep"
    easy = history(batch_agreement=[NAN, 0.9, 0.95], random_batch_agreement=[NAN, 0.6, 0.7])
    advice = strategy_advice(easy, "kcenter")
    assert (advice.action, advice.strategy) == ("harder", "wkmeans")
    assert strategy_advice(history(mean_confidence=[0.5]), "margin").reasons == [
        "not enough history for the strategy advice yet"
    ]
    with pytest.raises(InputError, match="no place on the ladder"):
        strategy_advice(easy, "informed_confidence")


def test_auto_starts_waits_after_a_switch_and_refuses_bad_parameters():
    from active_labeling.samplers.auto import AutoStrategy

    easy = history(batch_agreement=[NAN, 0.9, 0.95], random_batch_agreement=[NAN, 0.6, 0.7])
    auto = AutoStrategy(start="kcenter")
    assert auto.choose(None, []).strategy == "kcenter"
    assert auto.choose(easy, ["kcenter"]).action == "keep"  # one batch: too early
    choice = auto.choose(easy, ["kcenter", "kcenter"])
    assert (choice.strategy, choice.action) == ("wkmeans", "harder")
    with pytest.raises(InputError, match="start must be one of"):
        AutoStrategy(start="nope").choose(None, [])
    with pytest.raises(InputError, match="k must be a positive integer"):
        AutoStrategy(k=0).choose(None, [])


def test_an_auto_run_logs_its_choices_and_makes_the_same_ones_again(tmp_path):
    from active_labeling.experiment import create_experiment, run_experiment

    config = tmp_path / "auto.toml"
    config.write_text(
        "seeds = 1\nbatch_size = 5\nn_rounds = 6\n"
        'strategies = [{ name = "auto", params = { start = "kcenter", k = 1 } }]\n'
        'initial = { size = 6, method = "stratified" }\n[data]\nsklearn = "iris"\n',
        encoding="utf-8",
    )
    logs = []
    for out in ("a", "b"):
        create_experiment(config, tmp_path / out)
        run_experiment(tmp_path / out, n_jobs=1, progress=False)
        logs.append((tmp_path / out / "runs" / "auto" / "seed-0" / "auto.csv").read_text())
    assert logs[0] == logs[1]
    choices = pd.read_csv(tmp_path / "a" / "runs" / "auto" / "seed-0" / "auto.csv")
    assert choices["iteration"].tolist() == [1, 2, 3, 4, 5, 6]
    assert choices["strategy"].iloc[0] == "kcenter" and choices["reasons"].notna().all()
    with pytest.raises(InputError, match=r"params\.beta: strategy 'auto' has no such parameter"):
        create_experiment(
            _write(tmp_path / "bad.toml", config.read_text().replace("k = 1", "beta = 3")),
            tmp_path / "c",
        )


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_presets_build_and_match_the_recipe_and_their_study():
    import typing

    from active_labeling.flow.monitoring import MonitoringParams
    from active_labeling.metrics.advice import calibration, preset_names, preset_policy

    study = calibration()
    choices = typing.get_args(MonitoringParams.model_fields["advice"].annotation)
    assert set(choices) == {*study["presets"], "classic"}
    assert preset_names()[0] == study["default"] == MonitoringParams().advice
    for name, preset in study["presets"].items():
        policy = preset_policy(name)
        assert [r.name for r in policy.stop_rules] == [r["rule"] for r in preset["rules"]]
        # Chosen within its budget of premature stops over all the study's runs.
        assert preset["no_holdout"]["all"]["premature_1"] <= preset["max_premature"]
        assert not {r.name for r in policy.watch_rules} & {r.name for r in policy.stop_rules}
    with pytest.raises(InputError, match="unknown advice preset 'bold'"):
        preset_policy("bold")
