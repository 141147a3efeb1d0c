"""The control API (``racelab run api``): the seed's ``/api/ingestion/...`` contract on FastAPI + uvicorn.

::

    app.py       the application: routes, key guard, request metrics, error envelope
    auth.py      X-Ingestion-Key (constant-time check before anything else runs)
    models.py    request and response bodies, race id parsing
    routes.py    /api/ingestion/... (races and their odds charts too) and /metrics /healthz /readyz
    page.py      the read-only status page at / (page.html; served when api.page_enabled is set)
    service.py   what the routes do, over the producers' collector, poller and clock
    triggers.py  which calls each trigger makes; identical calls once
    status.py    the status of a race day, and where each number comes from
    store.py     the API's database reads
    server.py    uvicorn in the command's event loop; the OpenAPI document writer
"""
