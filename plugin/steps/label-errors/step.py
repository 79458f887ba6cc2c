# Thin component: read the config, score the labels, record what was found.
from active_labeling.flow.steps import (
    LabelErrorsStepParams,
    get_step_config,
    report,
    score_labels,
    set_result,
)

params = LabelErrorsStepParams.model_validate(get_step_config())
outcome = score_labels(params)
set_result(outcome)
if outcome["scored_before"]:
    report(f"model {outcome['model']!r} v{outcome['version']} was scored before: nothing new")
else:
    report(
        f"model {outcome['model']!r} v{outcome['version']}: {outcome['suspects']} likely label "
        f"error(s) among {outcome['labels_scored']} labels, first in the review queue"
    )
