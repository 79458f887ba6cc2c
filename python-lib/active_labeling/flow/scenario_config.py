"""How ``project.toml`` declares scenarios: a trigger and the steps it runs, in order.

```toml
[scenarios.loop]
trigger = { type = "every-n-labels", every_n_labels = 50 }
steps = [
  { type = "train-model", params = { recipe = "train" } },
  { type = "query-sampler", params = { recipe = "query" } },
  { type = "monitoring", params = { recipe = "monitor" } },
  { type = "stopping-check" },
]
```

The trigger's params sit beside its ``type`` and are checked when the project is opened
(a cron expression that does not parse names its field). Step types and params are checked
when a scenario is listed or run (``flow.scenarios``), against the plugin's steps.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from active_labeling.errors import InputError
from active_labeling.flow.triggers import TRIGGER_PARAMS

#: The scenario a new project gets (``Project.init``), and its recipes' names.
DEFAULT_SCENARIO = "loop"
DEFAULT_EVERY_N_LABELS = 50
DEFAULT_RECIPES = {"train-model": "train", "query-sampler": "query", "monitoring": "monitor"}


class TriggerEntry(BaseModel):
    """A scenario's trigger: its type and, beside it, the type's params."""

    model_config = ConfigDict(extra="allow")

    type: str = "manual"

    @model_validator(mode="after")
    def _params_fit_the_type(self) -> TriggerEntry:
        self.params()
        return self

    def params(self) -> dict[str, Any]:
        """The params with defaults applied (``ValueError`` naming the field if wrong)."""
        model = TRIGGER_PARAMS.get(self.type)
        if model is None:
            raise ValueError(
                f"unknown trigger type {self.type!r}; the types are {', '.join(TRIGGER_PARAMS)}"
            )
        try:
            return model.model_validate(self.model_extra or {}).model_dump()
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: {first['msg']}") from None
        except InputError as exc:  # a cron expression or time zone that does not parse
            raise ValueError(str(exc)) from None

    def describe(self) -> str:
        params = self.params()
        if self.type == "every-n-labels":
            return f"every {params['every_n_labels']} new labels"
        if self.type == "cron":
            return f"cron {params['cron']!r} ({params['timezone']})"
        if self.type == "manual":
            return "manual"
        return self.type


class StepEntry(BaseModel):
    """One step: a type of ``plugin/steps/`` and its params."""

    model_config = ConfigDict(extra="forbid")

    type: str
    params: dict[str, Any] = Field(default_factory=dict)


class ScenarioEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trigger: TriggerEntry = Field(default_factory=TriggerEntry)
    steps: list[StepEntry] = Field(min_length=1)


def default_scenarios() -> dict[str, ScenarioEntry]:
    """Every 50 new labels: train, query, monitor, check stopping (the default recipes)."""
    return {
        DEFAULT_SCENARIO: ScenarioEntry(
            trigger=TriggerEntry(type="every-n-labels", every_n_labels=DEFAULT_EVERY_N_LABELS),
            steps=[
                *(
                    StepEntry(type=step_type, params={"recipe": recipe})
                    for step_type, recipe in DEFAULT_RECIPES.items()
                ),
                StepEntry(type="stopping-check"),
            ],
        )
    }
