"""A pipeline's plan: its steps checked into a graph, and what a resume must re-run.

Also where a step's callable can be imported from (``module:qualname``), which is what lets
another process (a resume, a Dask worker) find it again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chachaml.client.pipelines.runner import Step
from chachaml.errors import InvalidInput
from chachaml.records.pipelines import PipelineDetail


def as_steps(steps: Sequence[Step | Callable[..., Any]]) -> list[Step]:
    """``Step`` objects as given; a plain callable becomes a step named after it."""
    if isinstance(steps, str | bytes) or not isinstance(steps, Sequence):
        raise InvalidInput(f"steps must be a list of steps or callables, got {steps!r}")
    out = []
    for item in steps:
        if isinstance(item, Step):
            out.append(item)
        elif callable(item):
            out.append(Step(getattr(item, "__name__", type(item).__name__), item))
        else:
            raise InvalidInput(f"a step must be a chachaml Step or a callable, got {item!r}")
    return out


def plan(steps: Sequence[Step]) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies, in definition order, after checking the graph.

    Refuses an empty pipeline, duplicate names, unknown or self dependencies and cycles.
    """
    if not steps:
        raise InvalidInput("a pipeline needs at least one step")
    deps: dict[str, tuple[str, ...]] = {}
    for i, step in enumerate(steps):
        if step.name in deps:
            raise InvalidInput(f"duplicate step name {step.name!r}: step names must be unique")
        implicit = (steps[i - 1].name,) if i else ()
        deps[step.name] = implicit if step.depends_on is None else tuple(step.depends_on)
    for name, ds in deps.items():
        for d in ds:
            if d == name:
                raise InvalidInput(f"step {name!r} depends on itself")
            if d not in deps:
                raise InvalidInput(
                    f"step {name!r} depends on unknown step {d!r} (steps: {', '.join(deps)})"
                )
    for step in steps:
        if step.map_over is not None and step.map_over not in deps[step.name]:
            raise InvalidInput(
                f"step {step.name!r} maps over {step.map_over!r}, which is not among its"
                f" dependencies ({', '.join(deps[step.name]) or 'none'})"
            )
    cycle = _find_cycle(deps)
    if cycle:
        raise InvalidInput(f"the steps form a cycle: {' -> '.join(cycle)}")
    return deps


def _find_cycle(deps: Mapping[str, Sequence[str]]) -> list[str]:
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return []
        path.append(name)
        for d in deps[name]:
            found = visit(d)
            if found:
                return found
        path.pop()
        done.add(name)
        return []

    for name in deps:
        found = visit(name)
        if found:
            return found
    return []


def target_of(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` that imports back to ``fn`` itself, or ``None`` (lambdas, closures)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    target = f"{module}:{qualname}"
    try:
        found = import_target(target)
    except InvalidInput:
        return None
    return target if found is fn else None


def import_target(target: str) -> Any:
    """The object ``module:qualname`` names; ``InvalidInput`` if it cannot be imported."""
    module_name, _, qualname = target.partition(":")
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidInput(f"cannot import {target!r}: {exc}") from exc
    return found


def rerun_set(detail: PipelineDetail) -> set[str]:
    """The steps a resume runs: those not completed, and completed ones with a needed result.

    A completed step is re-run when a re-run step depends on it and its result was not
    stored (not JSON-able), since the result exists nowhere else.
    """
    by_name = {s.name: s for s in detail.steps}
    rerun = {s.name for s in detail.steps if s.status != "completed"}
    while True:
        needed = {
            d
            for n in rerun
            for d in by_name[n].depends_on
            if d not in rerun and not by_name[d].result_stored
        }
        if not needed:
            return rerun
        rerun |= needed
