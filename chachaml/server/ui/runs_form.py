"""The Runs table's form: its query string read into a RunQuery, columns and sort.

Kept apart from the page so that the page, its JSON twin, the keys endpoint and the CSV
export read the same filters the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.runs import RUN_ORDERS, RUN_STATUSES, RunQuery
from chachaml.server.ui.common import date_param, text_param
from chachaml.tools.run_filter import MAX_LENGTH, RunFilter, parse_filter

KINDS = ("metrics", "params", "tags")
MAX_COLUMNS = 30


class FilterError(InvalidInput):
    """A filter expression that does not read: shown in the page beside what was typed."""


@dataclass
class Column:
    """A metric, param or tag column: ``metrics.acc`` is kind ``metrics``, name ``acc``."""

    kind: str
    name: str

    @property
    def key(self) -> str:
        """``kind.name``, as the URL's ``cols`` and ``sort`` spell it."""
        return f"{self.kind}.{self.name}"

    def as_json(self) -> dict[str, str]:
        """The column for the page's JSON."""
        return {"key": self.key, "kind": self.kind, "name": self.name}


def column(text: str) -> Column:
    """A column from its key; a key without a known prefix names a metric."""
    kind, dot, name = text.partition(".")
    if not dot or kind not in KINDS:
        kind, name = "metrics", text
    return Column(kind, v.key(name, f"column {text!r}"))


@dataclass
class RunsForm:
    """What the Runs page was asked for, as typed (``q`` is the filter expression)."""

    experiment: str | None = None
    status: str | None = None
    user: str | None = None
    mine: bool = False
    since: str | None = None
    until: str | None = None
    name: str | None = None
    q: str = ""
    parent: str | None = None
    nest: bool = True
    nest_param: str = ""  # as asked: "", "0" or "1"
    cols: list[Column] | None = None  # None: not chosen, the default columns

    def as_json(self, created_by: str | None) -> dict[str, Any]:
        """The form as the page's JSON echoes it (``created_by``: the user filtered on)."""
        return {
            "experiment": self.experiment,
            "status": self.status,
            "created_by": created_by,
            "user": self.user,
            "mine": self.mine,
            "since": self.since,
            "until": self.until,
            "name": self.name,
            "q": self.q,
            "parent": self.parent,
            "nest": self.nest,
            "nest_param": self.nest_param,
        }


def read_form(request: Request) -> RunsForm:
    """The Runs filters from the query string, each checked (a bad one is a 422 page)."""
    status = text_param(request, "status")
    if status is not None and status not in RUN_STATUSES:
        raise InvalidInput(f"query parameter 'status' must be one of {', '.join(RUN_STATUSES)}")
    q = text_param(request, "q", MAX_LENGTH) or ""
    name = text_param(request, "name")
    nest_raw = request.query_params.get("nest", "")
    if nest_raw not in ("", "0", "1"):
        raise InvalidInput("query parameter 'nest' must be 0 or 1")
    cols = None
    if "cols" in request.query_params:
        keys = [
            part.strip()
            for raw in request.query_params.getlist("cols")
            for part in raw.split(",")
            if part.strip()
        ]
        cols = list({c.key: c for c in map(column, keys)}.values())
        if len(cols) > MAX_COLUMNS:
            raise InvalidInput(f"at most {MAX_COLUMNS} columns")
    parent = text_param(request, "parent", 64)
    return RunsForm(
        experiment=text_param(request, "experiment"),
        status=status,
        user=text_param(request, "user"),
        mine=request.query_params.get("mine") == "1",
        since=date_param(request, "since"),
        until=date_param(request, "until"),
        name=name,
        q=q,
        parent=parent,
        # child runs nest under their parent unless a search could match children alone
        nest_param=nest_raw,
        nest=nest_raw == "1" or (nest_raw == "" and not (q.strip() or name or parent)),
        cols=cols,
    )


def _merge(form_value: object, filter_value: object, what: str) -> Any:
    if form_value is not None and filter_value is not None and form_value != filter_value:
        raise FilterError(f"{what} is set both above ({form_value}) and in the filter "
                          f"({filter_value}); keep one")  # fmt: skip
    return filter_value if filter_value is not None else form_value


def base_query(form: RunsForm, ui_user: str) -> RunQuery:
    """The filters (no order, no page) as a RunQuery; a bad expression is a FilterError."""
    try:
        flt = parse_filter(form.q)
    except InvalidInput as exc:
        raise FilterError(str(exc)) from None
    since, until = v.when(form.since, "since"), v.when(form.until, "until")
    if flt.since is not None:
        since = flt.since if since is None else max(since, flt.since)
    if flt.until is not None:
        until = flt.until if until is None else min(until, flt.until)
    if since is not None and until is not None and since >= until:
        message = f"since ({since.isoformat()}) must be before until ({until.isoformat()})"
        raise (FilterError if flt.since or flt.until else InvalidInput)(message)
    try:
        return _query(form, flt, ui_user if form.mine else form.user, since, until)
    except ValidationError as exc:  # e.g. NUL in a quoted value
        raise FilterError(str(v.refused(exc))) from None


def _query(
    form: RunsForm, flt: RunFilter, user: str | None, since: object, until: object
) -> RunQuery:
    contains = _merge(form.experiment, flt.experiment_contains, "experiment")
    return RunQuery(
        experiment=flt.experiment,
        experiment_contains=contains,
        status=_merge(form.status, flt.status, "status"),
        created_by=_merge(user, flt.created_by, "user"),
        since=since,  # type: ignore[arg-type]
        until=until,  # type: ignore[arg-type]
        name_contains=_merge(form.name, flt.name_contains, "name"),
        metric_conditions=flt.metric_conditions,
        params=flt.params,
        tags=flt.tags,
        parent_id=form.parent,
        top_level=form.nest and form.parent is None,
        limit=None,
    )


def sort_fields(sort: str) -> dict[str, Any]:
    """RunQuery order fields of a sort key: a run field, ``metrics.NAME`` or ``params.NAME``."""
    if sort in RUN_ORDERS:
        return {"order_by": sort}
    col = column(sort)
    if col.kind == "tags":
        raise InvalidInput("sort by a run field, metrics.NAME or params.NAME, not a tag")
    return {f"order_by_{'metric' if col.kind == 'metrics' else 'param'}": col.name}


def sort_key(sort: str) -> str:
    """A sort as its column key (``acc`` is ``metrics.acc``; run fields stay)."""
    return sort if sort in RUN_ORDERS else column(sort).key
