"""The audit service: a FastAPI app over the event index and the data dir's pools.

    main.py      create_app: wiring, error translation, body size limit
    settings.py  the CHAINABS_* settings
    deps.py      dependencies shared by the routes (state, addresses, pools, pagination)
    auth.py      the operator bearer key
    routes/      one module per resource
"""

from chainabs.api.main import create_app
from chainabs.api.settings import Settings

__all__ = ["Settings", "create_app"]
