"""MLflow 3's logged models as chachaml keeps them: a folder and a record on a run.

One shape for every way in (MLflow's ``logged-models`` endpoints, ``chachaml import mlflow``):

- **Its files** are artifacts of its run in a folder named after it (``model/MLmodel``, ...);
  a second model of the same name on one run gets ``<name>-<its id's 8 hex>`` (:func:`folder_for`)
  so that the two never share files.
- **Its record** (:class:`LoggedModel`: name, type, status, tags, params, times) is the JSON
  artifact ``.mlflow/logged-models/<model id>.json`` of the same run, and the run tag
  ``mlflow.loggedModel.<model id>`` (its value the model's name) indexes it, so one query over
  an experiment's runs finds every model in it.
- **Its id** is ``m-<run id>-<8 hex>``: the run is read from the id, so a read is two lookups.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from pydantic import BaseModel, Field

from chachaml.errors import InvalidInput, NotFound
from chachaml.store.artifacts import ArtifactStore
from chachaml.store.protocol import Store
from chachaml.tools import artifacts as artifact_ops
from chachaml.tools import runs as run_ops

TAG = "mlflow.loggedModel."  # + model id: the run tag that indexes a model (value: its name)
RECORDS = ".mlflow/logged-models"
MODEL_ID = re.compile(r"m-(.+)-([0-9a-f]{8})")


class LoggedModel(BaseModel):
    """What chachaml keeps of a logged model (the JSON artifact on its run)."""

    model_id: str
    experiment_id: str  # MLflow's id of the run's experiment
    name: str
    run_id: str  # where its files and this record are
    source_run_id: str | None = None  # None: logged without a run (``run_id`` is its own)
    model_type: str | None = None
    status: str = "LOGGED_MODEL_PENDING"
    status_message: str | None = None
    created_ms: int
    updated_ms: int
    tags: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    deleted: bool = False
    folder: str | None = None  # its files' folder on the run when not its name

    @property
    def path(self) -> str:
        """The folder of the run's artifacts that holds the model's files."""
        return self.folder or self.name


def folder_for(run_tags: Mapping[str, str], name: str, model_id: str) -> str:
    """The folder of a new model on a run: its name, unless another model of the run has it.

    The run's index tags say which models it holds and their names; a second model of the
    same name gets ``<name>-<8 hex of its id>``, so uploading it never replaces the first's
    files. Decided from the index alone (not from the files present), the answer is the same
    when an interrupted import asks again.
    """
    taken = any(
        key.startswith(TAG) and key != TAG + model_id and value == name
        for key, value in run_tags.items()
    )
    return f"{name}-{model_id[-8:]}" if taken else name


def new_model_id(run_id: str, suffix: str | None = None) -> str:
    """A model id on ``run_id`` (``suffix``: 8 hex characters; random if not given)."""
    tail = suffix if suffix is not None else secrets.token_hex(4)
    if not re.fullmatch(r"[0-9a-f]{8}", tail):
        raise InvalidInput(f"a logged model id ends in 8 hex characters, got {tail!r}")
    return f"m-{run_id}-{tail}"


def record_name(model_id: str) -> str:
    """The artifact holding a model's record."""
    return f"{RECORDS}/{model_id}.json"


def run_of(model_id: str) -> str:
    """The run a model id names; ``NotFound`` for an id chachaml never made."""
    found = MODEL_ID.fullmatch(model_id)
    if found is None:
        raise NotFound(f"no logged model with id {model_id!r}")
    return found.group(1)


async def read_logged_model(
    store: Store, artifacts: ArtifactStore, model_id: str, *, allow_deleted: bool = False
) -> LoggedModel:
    """A logged model's record; ``NotFound`` if there is none (or it was deleted)."""
    try:
        _, data = await artifact_ops.read_bytes(store, artifacts, run_of(model_id),
                                                record_name(model_id))  # fmt: skip
    except (NotFound, InvalidInput):
        raise NotFound(f"no logged model with id {model_id!r}") from None
    record = LoggedModel.model_validate_json(data)
    if record.deleted and not allow_deleted:
        raise NotFound(f"logged model {model_id!r} was deleted")
    return record


async def write_logged_model(store: Store, artifacts: ArtifactStore, record: LoggedModel) -> None:
    """Store a model's record (a new JSON artifact version replaces the old)."""
    data = record.model_dump_json().encode()
    await artifact_ops.put_bytes(
        store, artifacts, record.run_id, record_name(record.model_id), data,
        content_type="application/json", serializer="json",
    )  # fmt: skip


async def index_logged_model(store: Store, record: LoggedModel, user: str | None = None) -> None:
    """Tag the model's run so that searches over its experiment find it."""
    await run_ops.set_tags(store, record.run_id, {TAG + record.model_id: record.name}, user)
