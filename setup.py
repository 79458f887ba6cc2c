"""Build hook: the wheel carries the plugin's components beside the library.

``plugin.json``, ``recipes/``, ``webapps/`` and ``plugin/`` stay at the top of the checkout
(a data-platform plugin's layout, see docs/ARCHITECTURE.md); a non-editable build copies
them into the package as ``active_labeling/_plugin/``, where ``flow.descriptors.plugin_root``
finds them, so that an installed wheel works from any folder. An editable install reads them
from the checkout. Everything else is configured in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: The plugin's components, relative to the checkout (and to the packaged copy).
COMPONENTS = ("plugin.json", "recipes", "webapps", "plugin")
PACKAGED = Path("active_labeling", "_plugin")
_SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")


class BuildWithPlugin(build_py):
    """``build_py``, then the components copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # the checkout is the plugin root
        target = Path(self.build_lib) / PACKAGED
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in COMPONENTS:
            source = ROOT / name
            if not source.exists():
                raise FileNotFoundError(f"{source}: a component of the plugin is missing")
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=_SKIPPED)
            else:
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildWithPlugin})
