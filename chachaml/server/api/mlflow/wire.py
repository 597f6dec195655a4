"""The request side of MLflow's protocol: body messages, GET parameters and page tokens.

MLflow's client sends POST bodies as protobuf JSON (``message_to_json``: int64 as numbers,
doubles' NaN and infinities as strings) and GET requests with the message's fields as query
parameters (repeated fields repeated). Bodies ignore fields they do not know, as protobuf
parsing does, so a newer client's extra fields are no error.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chachaml.errors import InvalidInput
from chachaml.server.api.endpoint import Call

MAX_RESULTS = 50_000  # MLflow's own cap on search_runs' max_results


class Message(BaseModel):
    """A request body: unknown fields ignored (protobuf's parsing), known ones checked."""

    model_config = ConfigDict(extra="ignore")


class KeyValue(Message):
    """MLflow's ``{"key": ..., "value": ...}`` (a tag, a param)."""

    key: str = Field(max_length=250)
    value: str = Field(default="", max_length=8000)


def text_param(call: Call, *names: str, required: bool = True) -> str | None:
    """A GET parameter by the first of ``names`` present (``run_id`` or its old ``run_uuid``)."""
    for name in names:
        value = call.request.query_params.get(name)
        if value is not None and value != "":
            if "\x00" in value:
                raise InvalidInput(f"parameter {name!r} holds a NUL character")
            return value
    if required:
        raise InvalidInput(f"missing value for required parameter {names[0]!r}")
    return None


def required_param(call: Call, *names: str) -> str:
    """A GET parameter that must be present."""
    value = text_param(call, *names)
    assert value is not None
    return value


def int_param(call: Call, name: str) -> int | None:
    """An integer GET parameter, if given."""
    value = text_param(call, name, required=False)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"parameter {name!r} must be an integer, got {value!r}") from None


def max_results(given: int | None, default: int, cap: int = MAX_RESULTS) -> int:
    """A page size from 1 to ``cap`` (``default`` when not given)."""
    if given is None:
        return default
    if not 1 <= given <= cap:
        raise InvalidInput(f"max_results must be between 1 and {cap}, got {given}")
    return given


def page_token(offset: int) -> str:
    """An opaque token for the page starting at ``offset``."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_offset(token: str | None) -> int:
    """The offset a token from :func:`page_token` names (0 without one)."""
    if not token:
        return 0
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(token.encode()))
        offset = data["offset"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise InvalidInput(f"invalid page_token {token[:40]!r}") from None
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput(f"invalid page_token {token[:40]!r}")
    return offset


def view_type(given: int | str | None) -> tuple[bool, bool]:
    """``(include_archived, only_archived)`` of MLflow's ViewType (name or number)."""
    names = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}
    name = names.get(given, given) if isinstance(given, int) else given or "ACTIVE_ONLY"
    views = {"ACTIVE_ONLY": (False, False), "DELETED_ONLY": (True, True), "ALL": (True, False)}
    if not isinstance(name, str) or name.upper() not in views:
        raise InvalidInput(f"unknown view type {given!r}: one of {', '.join(views)}")
    return views[name.upper()]
