# Thin component: compare the new labels with N; fire when enough came in.
from active_labeling.flow.triggers import (
    EveryNLabelsParams,
    fire,
    get_trigger_config,
    get_trigger_state,
)

params = EveryNLabelsParams.model_validate(get_trigger_config())
state = get_trigger_state()
if state.new_labels >= params.every_n_labels and not state.retry_wait:
    fire(f"every-n-labels: {state.new_labels} new labels (every {params.every_n_labels})")
