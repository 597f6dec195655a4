"""Reading an MLflow store for ``chachaml import mlflow``: opening it, paging, mapping entities.

Only MLflow's own client is used (``MlflowClient`` and its artifact repositories), so every
backend MLflow opens reads the same way and ``mlflow`` stays an optional extra.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from chachaml.errors import InvalidInput, import_extra
from chachaml.records.runs import Dataset

PARENT = "mlflow.parentRunId"
CONTEXT = "mlflow.data.context"  # a dataset input's role
PAGE = 1000


def source_label(uri: str) -> str:
    """The source as the marker tag records it: a URI without user or password."""
    parts = urlsplit(uri)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        uri = parts._replace(netloc=netloc).geturl()
    return f"mlflow {uri}"


def local_path(uri: str) -> Path | None:
    """The file or folder a local MLflow URI names (``None``: a server or another database)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return Path(parts.path if parts.scheme else uri)
    if parts.scheme == "sqlite":
        return Path(uri.split("sqlite:///", 1)[1]) if uri.startswith("sqlite:///") else None
    return None


@contextmanager
def mlflow_defaults(uri: str) -> Iterator[None]:
    """MLflow's process-wide defaults pointed at ``uri`` for the block, then put back.

    MLflow 3 refuses to open a ``mlruns`` folder unless ``MLFLOW_ALLOW_FILE_STORE`` is set
    (reading one to move off it is what its message recommends), and its registries read a
    ``models:/<id>`` source through a client of the *default* tracking URI, which must then
    be the source (else they look in the wrong store, or leave a stray ``./mlflow.db``).
    ``set_tracking_uri`` mirrors the URI into ``MLFLOW_TRACKING_URI``, so the variable's
    value before is the default to restore (unset when it was).
    """
    import_extra("mlflow", "mlflow", "chachaml import mlflow")
    import mlflow

    allow = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # type: ignore[arg-type]  # None unsets it
        if allow is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = allow


def open_source(uri: str) -> Any:
    """An ``MlflowClient`` over the store ``uri`` names; ``InvalidInput`` if it is not there.

    MLflow would create an empty store at a local path that does not exist, and the import
    would then find nothing: a typo should say so instead.
    """
    import_extra("mlflow", "mlflow", "chachaml import mlflow")
    from mlflow.tracking import MlflowClient

    local = local_path(uri)
    if local is not None and not local.exists():
        raise InvalidInput(f"no MLflow store at {uri!r}: {str(local)!r} does not exist")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def pages(call: Callable[..., Any], **kwargs: Any) -> list[Any]:
    """Every item of a paged MLflow listing."""
    found: list[Any] = []
    token = None
    while True:
        page = call(max_results=PAGE, page_token=token, **kwargs)
        found.extend(page)
        token = page.token
        if not token:
            return found


def seconds(ms: int | None) -> float | None:
    """MLflow's epoch milliseconds as chachaml's epoch seconds."""
    return None if ms is None else ms / 1000.0


def dataset_of(given: Any) -> Dataset:
    """An MLflow ``DatasetInput`` as a chachaml dataset, as the MLflow protocol maps one."""
    body = given.dataset
    tags = {t.key: t.value for t in given.tags or []}
    role = tags.pop(CONTEXT, None) or "input"
    extra: dict[str, Any] = {"source_type": body.source_type or "unknown"}
    for name in ("schema", "profile"):
        if getattr(body, name, None):
            extra[name] = getattr(body, name)
    if tags:
        extra["tags"] = tags
    return Dataset(
        role=role,
        name=body.name or None,
        source=body.source or None,
        digest=body.digest or None,
        extra=extra,
    )


def parents_first(runs: Sequence[Any]) -> list[Any]:
    """Runs ordered so that every parent in the list comes before its children."""
    by_id = {r.info.run_id: r for r in runs}
    ordered: list[Any] = []
    placed: set[str] = set()
    for run in runs:
        chain = []
        current: Any = run
        while current is not None and current.info.run_id not in placed:
            chain.append(current)
            placed.add(current.info.run_id)
            current = by_id.get(current.data.tags.get(PARENT, ""))
        ordered.extend(reversed(chain))
    return ordered
