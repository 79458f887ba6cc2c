# Thin component: read the roles and the config, call the library, report.
from active_labeling.flow.label_errors import LabelErrorParams, find_label_errors
from active_labeling.flow.runtime import (
    get_connection,
    get_input_names_for_role,
    get_output_names_for_role,
    get_project,
    get_recipe_config,
    report,
)
from active_labeling.flow.train_model import TrainModelParams, train_model

params = TrainModelParams.model_validate(get_recipe_config())
dataset = get_input_names_for_role("dataset")[0]
saved = train_model(
    get_connection(),
    get_project(),
    dataset=dataset,
    model=get_output_names_for_role("model")[0],
    params=params,
)
kind = f"multi-label {saved.meta.multi_label_method} " if saved.meta.multi_label else ""
report(
    f"model {saved.name!r} version {saved.version}: {kind}{saved.meta.classifier} on "
    f"{saved.meta.training_rows} labels, {saved.meta.scores_summary()}; saved in {saved.path}"
)
if params.find_label_errors:
    run = find_label_errors(
        get_connection(),
        get_project(),
        dataset=dataset,
        model=saved.name,
        version=saved.version,
        params=LabelErrorParams(cv_folds=params.cv_folds, random_state=params.random_state),
    )
    report(
        f"likely label errors: {run.n_suspects} suspect(s) among {run.n_labels} labels, "
        "first in the review queue"
    )
