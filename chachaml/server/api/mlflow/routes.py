"""MLflow's tracking REST API on chachaml's app: every endpoint module, under both prefixes.

MLflow's client calls ``/api/2.0/mlflow/...``; its web UI calls the same endpoints under
``/ajax-api/2.0/mlflow/...``. Each endpoint module (experiments, runs, metrics, search,
logged models, the model registry) holds an :class:`~chachaml.server.api.endpoint.Api`;
further nouns slot in as modules added to :data:`APIS`. The artifact proxy has its own prefix
(``/api/2.0/mlflow-artifacts``). Endpoints of MLflow's
protocol that chachaml does not answer yet reply ``NOT_IMPLEMENTED`` and any other path under
the prefixes ``ENDPOINT_NOT_FOUND``, both as MLflow's JSON error, never an HTML page.

Routes are plain Starlette routes added to the app like every other, so the access layer
(:mod:`chachaml.server.access`) checks each request and the error handlers installed on the
app answer in MLflow's shape under these prefixes (:mod:`chachaml.server.errors`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chachaml.server.api.mlflow import (
    artifacts,
    experiments,
    logged_models,
    metrics,
    registry,
    runs,
    search,
)
from chachaml.server.api.mlflow.server_info import server_info_routes
from chachaml.server.errors import mlflow_envelope

APIS = (
    experiments.api,
    runs.api,
    metrics.api,
    search.api,
    logged_models.api,
    artifacts.tracking_api,
    registry.api,
)
PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
# MLflow 3's newer endpoints: server-info is answered; the rest (traces, datasets, ...) not yet
PREFIXES_3 = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
# Parts of MLflow's protocol chachaml does not answer yet, by path under the prefixes
LATER = {
    "/traces": "traces",
    "/datasets": "evaluation datasets",
}


async def not_found(request: Request) -> Response:
    """Any other path under MLflow's prefixes: MLflow's ENDPOINT_NOT_FOUND, or NOT_IMPLEMENTED."""
    rest = "/" + request.path_params.get("rest", "")
    for start, what in LATER.items():
        if rest == start or rest.startswith(start + "/"):
            return mlflow_envelope(
                501, f"chachaml does not serve {what} over MLflow's API yet", "NOT_IMPLEMENTED"
            )
    return mlflow_envelope(
        404, f"no MLflow endpoint {request.method} {request.url.path}", "ENDPOINT_NOT_FOUND"
    )


def mlflow_routes() -> list[Route]:
    """Every MLflow endpoint under both prefixes, then a catch-all for the rest of each."""
    routes = [route for prefix in PREFIXES for api in APIS for route in api.routes(prefix)]
    routes += server_info_routes()
    routes += [
        Route(prefix + "/{rest:path}", not_found, methods=ALL_METHODS)
        for prefix in (*PREFIXES, *PREFIXES_3)
    ]
    routes += artifacts.api.routes(artifacts.PREFIX)
    routes += [Route(artifacts.PREFIX + "/{rest:path}", not_found_artifacts, methods=ALL_METHODS)]
    return routes


async def not_found_artifacts(request: Request) -> Response:
    """The artifact proxy's multipart and presigned transfers (for cloud stores): not served."""
    return mlflow_envelope(
        501,
        f"chachaml's artifact proxy does not serve {request.method} {request.url.path}"
        " (multipart and presigned transfers are for cloud stores): upload with PUT",
        "NOT_IMPLEMENTED",
    )
