# Thin component: read the config, run the project's recipe, record what it made.
from active_labeling.flow.steps import (
    TrainModelStepParams,
    get_step_config,
    report,
    run_recipe,
    set_result,
)

params = TrainModelStepParams.model_validate(get_step_config())
outcome = run_recipe(params.recipe, "train-model")
set_result(outcome)
report(", ".join(f"{key} {value}" for key, value in outcome.items()))
