# Thin component: read the latest advice of the monitoring recipe, report it, halt if told.
from active_labeling.flow.monitoring import latest_advice
from active_labeling.flow.steps import (
    StoppingCheckParams,
    get_connection,
    get_project,
    get_step_config,
    halt,
    report,
    set_result,
)

params = StoppingCheckParams.model_validate(get_step_config())
entry = get_project().recipe(params.recipe)
advice = latest_advice(get_connection(), entry.inputs["model"][0], dataset=entry.inputs["pool"][0])
if advice is None:
    set_result({"advice": None})
    report(f"no stopping advice yet: the recipe {params.recipe!r} has measured no model version")
else:
    set_result(
        {
            "advice": advice["advice"],
            "reasons": advice["reasons"],
            "model_version": advice["model_version"],
            "n_labels": advice["n_labels"],
        }
    )
    report(f"stopping advice at {advice['n_labels']} labels: {advice['advice']}")
    for reason in advice["reasons"]:
        report(f"  - {reason}")
    if advice["advice"] in params.halt_on:
        halt(f"the stopping advice is {advice['advice']!r}")
