# Thin component: has a scheduled minute passed since the last run? Fire if so.
from active_labeling.flow.triggers import CronParams, fire, get_trigger_config, get_trigger_state

params = CronParams.model_validate(get_trigger_config())
state = get_trigger_state()
due = params.schedule().due(state.since, state.now)
if due is not None:
    fire(f"cron {params.cron!r}: {due.isoformat(timespec='minutes')}")
