# Thin component: read the roles and the config, call the library, report.
from active_labeling.flow.monitoring import MonitoringParams, export_monitoring, monitor
from active_labeling.flow.runtime import (
    get_connection,
    get_input_names_for_role,
    get_output_names_for_role,
    get_project,
    get_recipe_config,
    progress_bar,
    report,
)

params = MonitoringParams.model_validate(get_recipe_config())
pool = get_input_names_for_role("pool")[0]
model = get_input_names_for_role("model")[0]
holdout = get_input_names_for_role("holdout")
project = get_project()
con = get_connection()
with progress_bar(f"measuring {model}", unit="version") as bar:
    result = monitor(
        con,
        project,
        dataset=pool,
        model=model,
        holdout=holdout[0] if holdout else None,
        params=params,
        progress=bar.update,
    )
metrics_copy = export_monitoring(
    con, project, get_output_names_for_role("metrics")[0], "metrics", pool, model
)
export_monitoring(
    con, project, get_output_names_for_role("advice")[0], "stopping_advice", pool, model
)
advice = result.advice
if not result.versions:
    report(f"model {model!r}: every version is measured already; nothing appended")
else:
    report(
        f"model {model!r}: measured version(s) {', '.join(result.versions)}, "
        f"{result.n_rows} metric rows appended; copy at {metrics_copy}"
    )
if advice:
    report(
        f"stopping advice at {advice['n_labels']} labels (v{advice['model_version']}): "
        f"{advice['advice']}"
    )
    for reason in advice["reasons"]:
        report(f"  - {reason}")
