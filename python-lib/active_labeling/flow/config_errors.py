"""Turn pydantic validation errors into one line naming the file and the field."""

from __future__ import annotations

from pydantic import ValidationError

from active_labeling.errors import InputError


def config_error(source: str, exc: ValidationError) -> InputError:
    """An ``InputError`` for the first problem of ``exc``.

    For example ``project.toml: recipes.train.type: Field required``.
    """
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return InputError(f"{source}: {where}: {first['msg']}{more}")
