"""The error tree every boundary translates: HTTP statuses, MCP tool errors, chat tool results.

``ChachamlError`` is the root. Subclasses say what went wrong in terms a caller can act on:

- ``NotFound``: a run, experiment, artifact, model or version does not exist (HTTP 404).
- ``Conflict``: the write contradicts what is stored, e.g. a param logged twice with
  different values (HTTP 409).
- ``InvalidInput``: an argument is malformed or out of range (HTTP 422).
- ``StoreUnavailable``: the database or artifact store cannot be reached or is unusable (HTTP 503).
- ``Unauthorized``: the caller must say who they are, with a token (HTTP 401).
- ``Forbidden``: the caller is known but may not do this, e.g. a read token writing (HTTP 403).
- ``SchemaTooNew``: the database was written by a newer chachaml than this one.
- ``MissingExtra``: an optional dependency is not installed; the message names the extra
  (HTTP 501).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class ChachamlError(Exception):
    """Base class of every error chachaml raises on purpose."""


class NotFound(ChachamlError, LookupError):
    """The thing asked for does not exist."""


class Conflict(ChachamlError):
    """The write contradicts stored data."""


class InvalidInput(ChachamlError, ValueError):
    """An argument is malformed or out of range."""


class StoreUnavailable(ChachamlError):
    """The store or artifact store cannot be used right now."""


class Unauthorized(ChachamlError):
    """The request needs a token and has none, or an unknown one."""


class Forbidden(ChachamlError):
    """The caller's token does not allow this (its scope is too small)."""


class SchemaTooNew(StoreUnavailable):
    """The database schema is newer than this version of chachaml understands."""


class NoActiveRun(ChachamlError, RuntimeError):
    """A logging call needs a current run and there is none in this thread or task."""


class MissingExtra(ChachamlError, ImportError):
    """An optional dependency is not installed; the message names the extra that adds it."""


def import_extra(module: str, extra: str, what: str) -> ModuleType:
    """Import ``module`` of the optional extra ``extra``, or raise :class:`MissingExtra`.

    One line naming what needs it and the install command, instead of a traceback (or,
    inside a task group, an exception group) ending in ``ModuleNotFoundError``.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise MissingExtra(
            f"{what} needs {package}, which is not installed: pip install 'chachaml[{extra}]'"
        ) from None


__all__ = [
    "ChachamlError",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MissingExtra",
    "NoActiveRun",
    "NotFound",
    "SchemaTooNew",
    "StoreUnavailable",
    "Unauthorized",
]
