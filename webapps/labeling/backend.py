# Thin component: the app comes from the library; a platform runtime (or uvicorn) serves it.
#   uvicorn --factory webapps.labeling.backend:app  (with ACTIVE_LABELING_PROJECT set)
# or, simpler: active-labeling serve PROJECT
import os

from active_labeling.labeling.app import create_app


def app():
    return create_app(os.environ["ACTIVE_LABELING_PROJECT"])
