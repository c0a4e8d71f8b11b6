"""The audit service: a FastAPI app over the event index and the data dir's pools.

    main.py      create_app: wiring, error translation, body size limit
    settings.py  the CHAINABS_* settings
    deps.py      what routes depend on: the one AppState (with the data dir's pool and deal
                 catalogs), addresses, pagination
    models.py    response models of the deal figures, derived from the reference model
    auth.py      the operator bearer key
    routes/      one module per resource

The figures themselves are computed in chainabs.figures, which the CLI and the audit can use.
"""

from chainabs.api.main import create_app
from chainabs.api.settings import Settings

__all__ = ["Settings", "create_app"]
