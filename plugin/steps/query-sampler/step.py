# Thin component: read the config, run the project's recipe, record what it made.
from active_labeling.flow.steps import (
    QuerySamplerStepParams,
    get_step_config,
    report,
    run_recipe,
    set_result,
)

params = QuerySamplerStepParams.model_validate(get_step_config())
outcome = run_recipe(params.recipe, "query-sampler")
set_result(outcome)
report(", ".join(f"{key} {value}" for key, value in outcome.items()))
