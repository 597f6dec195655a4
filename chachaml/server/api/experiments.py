"""Experiment edits on the write API: rename, archive and restore, tags (by id).

An experiment is named by its id here because a rename changes its name; the Python client
(:class:`~chachaml.client.remote.RemoteStore`) looks the id up by name first. Each edit is
attributed to the token's user and writes its ``experiment.*`` event.
"""

from __future__ import annotations

from chachaml.server.api import schema as m
from chachaml.server.api.endpoint import Api, Call
from chachaml.tools import experiments as experiment_ops

api = Api()
EXPERIMENT = "/api/w/experiments/{experiment_id:int}"
ERR = (401, 403, 404, 409, 422)


def _id(call: Call) -> int:
    found: int = call.request.path_params["experiment_id"]
    return found


@api.route("POST", EXPERIMENT + "/rename", scope="write", body=m.RenameExperiment,
           response=m.Ok, errors=ERR)  # fmt: skip
async def rename_experiment(call: Call) -> m.Ok:
    """Rename an experiment; 409 if another experiment holds the name."""
    body: m.RenameExperiment = call.body
    await experiment_ops.rename_experiment(call.store, _id(call), body.name, call.user)
    return m.Ok()


@api.route("POST", EXPERIMENT + "/archive", scope="write", body=m.ArchiveExperiment,
           response=m.Ok, errors=ERR)  # fmt: skip
async def archive_experiment(call: Call) -> m.Ok:
    """Archive an experiment with its runs, or restore both (``archived: false``)."""
    body: m.ArchiveExperiment = call.body
    if body.archived:
        await experiment_ops.archive_experiment(call.store, _id(call), call.user)
    else:
        await experiment_ops.restore_experiment(call.store, _id(call), call.user)
    return m.Ok()


@api.route("POST", EXPERIMENT + "/tags", scope="write", body=m.ExperimentTag, response=m.Ok,
           errors=ERR)  # fmt: skip
async def set_experiment_tag(call: Call) -> m.Ok:
    """Set (or overwrite) one tag of an experiment."""
    body: m.ExperimentTag = call.body
    await experiment_ops.set_experiment_tag(call.store, _id(call), body.key, body.value,
                                            call.user)  # fmt: skip
    return m.Ok()


@api.route("POST", EXPERIMENT + "/tags/delete", scope="write", body=m.ExperimentTagKey,
           response=m.Ok, errors=ERR)  # fmt: skip
async def delete_experiment_tag(call: Call) -> m.Ok:
    """Remove one tag of an experiment; 404 if it has none of that key."""
    body: m.ExperimentTagKey = call.body
    await experiment_ops.delete_experiment_tag(call.store, _id(call), body.key, call.user)
    return m.Ok()
