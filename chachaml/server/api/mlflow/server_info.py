"""MLflow 3's ``server-info``: what the server supports, asked before anything else.

MLflow 3's client asks ``GET /api/3.0/mlflow/server-info`` when it starts talking to a
tracking server (whether workspaces are on, before any workspace-scoped call) and before a
large artifact transfer (whether multipart uploads and downloads are served); its telemetry
asks it too. MLflow answers it without a login (nothing in it is secret), and so does
chachaml: the paths are public in the access layer. chachaml serves no workspaces, traces
archive, multipart or presigned transfers and no AI gateway, and is neither of MLflow's
stores, so every capability reads off and ``store_type`` is null, as MLflow answers for a
store that is neither.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PATHS = ("/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info")
INFO = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}


async def server_info(request: Request) -> JSONResponse:
    """The capabilities, as MLflow's ``build_server_info_payload`` names them."""
    return JSONResponse(INFO)


def server_info_routes() -> list[Route]:
    """The endpoint under MLflow's two 3.0 prefixes."""
    return [Route(path, server_info, methods=["GET"]) for path in PATHS]
