# Thin component: read the config, call the library's export, record the file.
from active_labeling.flow.steps import (
    ExportStepParams,
    export_dataset_name,
    export_path,
    export_table,
    get_connection,
    get_project,
    get_step_config,
    report,
    set_result,
)
from active_labeling.store.consensus import ConsensusRule

params = ExportStepParams.model_validate(get_step_config())
project = get_project()
path = export_path(project, params.file, params.what)
dataset = export_dataset_name(project, params.dataset)
rule = ConsensusRule.for_dataset(project, dataset)
path = export_table(get_connection(), params.what, dataset, path, rule)
set_result({"what": params.what, "dataset": dataset, "file": str(path)})
report(f"{params.what} of {dataset!r} written to {path}")
