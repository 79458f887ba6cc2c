# Thin component: read the roles and the config, call the library, report.
from active_labeling.flow.query_sampler import QuerySamplerParams, query_sampler
from active_labeling.flow.runtime import (
    get_connection,
    get_input_names_for_role,
    get_output_names_for_role,
    get_project,
    get_recipe_config,
    progress_bar,
    report,
)

params = QuerySamplerParams.model_validate(get_recipe_config())
pool = get_input_names_for_role("pool")[0]
project = get_project()
with progress_bar(f"scoring {pool}", total=project.dataset(pool).rows) as bar:
    result = query_sampler(
        get_connection(),
        project,
        dataset=pool,
        model=next(iter(get_input_names_for_role("model")), None),
        queue=get_output_names_for_role("queue")[0],
        params=params,
        progress=bar.update,
    )
generation = result.generation
if result.auto is not None:
    report(
        f"auto chose {result.auto.strategy} ({result.auto.action}): "
        + "; ".join(result.auto.reasons)
    )
report(
    f"queue {generation.queue!r}: generation {generation.generation_id}, "
    f"{generation.n_items} items ranked by {generation.strategy} among {generation.pool_rows} "
    + (
        f"unlabeled, model {generation.model_name} v{generation.model_version}; "
        if generation.model_name
        else "unlabeled, by the uncertainties given; "
    )
    + f"copy at {result.parquet_path}"
)
