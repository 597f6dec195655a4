"""The ``experiments`` toolset: rename an experiment, archive or restore it, tag it.

Opt-in (``--toolsets experiments``): tidying experiments is an occasional job, and an agent
that only reads runs should not see tools that rename or hide them. Each edit is the same
operation as MLflow's API and the Python client call, attributed to the caller, and writes
its ``experiment.*`` event.
"""

from __future__ import annotations

from typing import Annotated

from mcp_types import CallToolResult
from pydantic import Field

from chachaml.records.runs import Experiment
from chachaml.server.mcp.access import caller_user
from chachaml.server.mcp.runs import ToolFn, answer
from chachaml.store.protocol import Store
from chachaml.tools import experiments as experiment_ops

Name = Annotated[str, Field(description="The experiment's exact name, as list_experiments shows.")]


def experiment_tools(store: Store, user: str = "mcp") -> list[ToolFn]:
    """The ``experiments`` toolset, bound to ``store``; edits are attributed to the caller."""

    async def rename_experiment(
        name: Name,
        new_name: Annotated[str, Field(description="The new name, unused by any experiment.")],
    ) -> Annotated[CallToolResult, Experiment]:
        """Rename an experiment; its runs and alert rules follow it.

        Fails if another experiment (archived or not) has the new name; the default
        experiment keeps its name. Example: {"name": "mnist-v2", "new_name": "mnist"}.
        """
        await experiment_ops.rename_experiment(store, name, new_name, caller_user(user))
        exp = await experiment_ops.get_experiment(store, new_name)
        return answer(exp, f"Experiment {name!r} is now {exp.name!r} ({exp.run_count} runs).")

    async def archive_experiment(
        name: Name,
        archived: Annotated[
            bool, Field(description="true archives it with its runs; false restores both.")
        ] = True,
    ) -> Annotated[CallToolResult, Experiment]:
        """Archive an experiment with its runs (out of listings, kept), or restore it.

        Runs a registered model version came from stay listed. Example: {"name": "scratch"}
        archives; {"name": "scratch", "archived": false} brings it back.
        """
        if archived:
            await experiment_ops.archive_experiment(store, name, caller_user(user))
        else:
            await experiment_ops.restore_experiment(store, name, caller_user(user))
        exp = await experiment_ops.get_experiment(store, name)
        state = "archived" if exp.archived else "restored"
        return answer(exp, f"Experiment {exp.name!r} {state}.")

    async def set_experiment_tag(
        name: Name,
        key: Annotated[str, Field(description="Tag key, e.g. team.")],
        value: Annotated[str | None, Field(description="Tag value; null removes the tag.")] = None,
    ) -> Annotated[CallToolResult, Experiment]:
        """Set one tag of an experiment (overwriting the same key), or remove it.

        Example: {"name": "mnist", "key": "team", "value": "vision"}; {"name": "mnist",
        "key": "team"} removes it.
        """
        if value is None:
            await experiment_ops.delete_experiment_tag(store, name, key, caller_user(user))
        else:
            await experiment_ops.set_experiment_tag(store, name, key, value, caller_user(user))
        exp = await experiment_ops.get_experiment(store, name)
        tags = ", ".join(f"{k}={val}" for k, val in sorted(exp.tags.items())) or "none"
        return answer(exp, f"Tags of experiment {exp.name!r}: {tags}.")

    return [rename_experiment, archive_experiment, set_experiment_tag]
