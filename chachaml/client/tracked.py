"""``@client.tracked``: each call of a function becomes a run named after it.

Kept apart from the client so the decorator's argument capture (scalar arguments become
params, sync and async functions alike) reads on its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from chachaml.records.runs import ParamValue

if TYPE_CHECKING:
    from chachaml.client.client import Client

P = ParamSpec("P")
R = TypeVar("R")
MAX_PARAM_TEXT = 500


def call_params(signature: inspect.Signature, args: Any, kwargs: Any) -> dict[str, ParamValue]:
    """The scalar arguments of one call (defaults applied), as params; {} if they do not bind."""
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return {}
    bound.apply_defaults()
    return {
        k: v
        for k, v in bound.arguments.items()
        if (v is None or isinstance(v, bool | int | float))
        or (isinstance(v, str) and len(v) <= MAX_PARAM_TEXT)
    }


def tracked_call(
    client: Client, func: Callable[P, R], experiment: str | None, run_name: str
) -> Callable[P, R]:
    """``func`` wrapped so each call runs inside a run of ``client``."""
    signature = inspect.signature(func)
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            params = call_params(signature, args, kwargs)
            async with await client.astart_run(experiment, run_name, params=params):
                return await func(*args, **kwargs)

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        params = call_params(signature, args, kwargs)
        with client.start_run(experiment, run_name, params=params):
            return func(*args, **kwargs)

    return wrapper
