# Thin component: read the config, run the project's recipe, record what it made.
from active_labeling.flow.steps import (
    MonitoringStepParams,
    get_step_config,
    report,
    run_recipe,
    set_result,
)

params = MonitoringStepParams.model_validate(get_step_config())
outcome = run_recipe(params.recipe, "monitoring")
set_result(outcome)
report(", ".join(f"{key} {value}" for key, value in outcome.items()))
