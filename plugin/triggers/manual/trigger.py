# Thin component: a manual trigger never fires; the scenario runs when someone asks.
from active_labeling.flow.triggers import ManualParams, get_trigger_config

ManualParams.model_validate(get_trigger_config())
