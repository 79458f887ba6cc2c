# Thin component: the app comes from the library; a platform runtime (or uvicorn) serves it.
#   uvicorn --factory webapps.labeling.backend:app  (with ACTIVE_LABELING_PROJECT set)
# or, simpler: active-labeling serve PROJECT
import os

from active_labeling.labeling.app import create_app, settle_heap


def app():
    served = create_app(os.environ["ACTIVE_LABELING_PROJECT"])
    settle_heap()  # one app per server process: its heap is never garbage
    return served
