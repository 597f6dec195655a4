"""MLflow's run search grammar: filters and ``order_by`` read into clauses chachaml can run.

``metrics.acc > 0.9 AND params.lr = '0.01' AND tags."mlflow.user" = 'ada' AND
attributes.status = 'FINISHED'``: conditions over ``metrics.``, ``params.``, ``tags.`` and
``attributes.`` (and MLflow's other spellings: ``metric.``, ``param.``, ``tag.``, ``attr.``,
``run.``), joined by ``AND``, with ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``LIKE``,
``ILIKE``, ``IN``/``NOT IN`` (attributes) and ``IS [NOT] NULL`` (params, tags) as MLflow
allows them per kind. Keys with spaces or dots are quoted with backticks or double quotes.

:func:`plan` splits the clauses into what the store's query answers itself (metric
thresholds, tag equality, status, user: each a :class:`~chachaml.records.runs.RunQuery`
field, run in SQL) and the rest, which :func:`matches` checks on each candidate run. A
mistake is ``InvalidInput`` naming the character where reading stopped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from chachaml.errors import InvalidInput
from chachaml.records.runs import MetricCondition, ParamValue, RunInfo
from chachaml.server.api.mlflow.entities import PARENT, RUN_NAME, param_text, run_tags
from chachaml.server.api.mlflow.ids import FROM_MLFLOW, TO_MLFLOW, millis

Kind = Literal["metric", "param", "tag", "attribute", "dataset"]
MAX_FILTER = 10_000
KINDS: Mapping[str, Kind] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
ATTRIBUTES: Mapping[str, str] = {
    "run_id": "run_id",
    "run_name": "run_name",
    "run name": "run_name",
    "status": "status",
    "user_id": "user_id",
    "start_time": "start_time",
    "created": "start_time",
    "end_time": "end_time",
    "lifecycle_stage": "lifecycle_stage",
    "artifact_uri": "artifact_uri",
}
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
COMPARE = frozenset({"=", "!=", ">", ">=", "<", "<="})
TEXT_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
IN_OPS = frozenset({"IN", "NOT IN"})
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<ident>[A-Za-z_]+\.(?:`[^`]*`|"[^"]*"|[\w.\-/:]+))
    | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<op>>=|<=|!=|<>|==|=|>|<)
    | (?P<punct>[(),])
    | (?P<word>`[^`]*`|[A-Za-z_][\w]*)
    | (?P<bad>\S)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    """One condition: ``kind.key op value`` (``value`` a number, text, tuple of texts or None)."""

    kind: Kind
    key: str
    op: str
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True)
class Order:
    """One ``order_by`` entry."""

    kind: Kind
    key: str
    ascending: bool


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _fail(at: int, message: str) -> InvalidInput:
    return InvalidInput(f"filter, at character {at + 1}: {message}")


def _tokens(text: str) -> list[_Token]:
    if len(text) > MAX_FILTER:
        raise InvalidInput(f"filter is longer than {MAX_FILTER} characters")
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:
            break
        kind, start = match.lastgroup, match.start(match.lastgroup)
        if kind == "bad":
            raise _fail(start, f"unexpected {match.group(kind)!r}")
        out.append(_Token(kind, match.group(kind), start))
        pos = match.end()
    return out


def _unquote(text: str) -> str:
    quote, body = text[0], text[1:-1]
    if quote == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


def _identifier(token: _Token, attributes: Mapping[str, str]) -> tuple[Kind, str]:
    """``metrics.acc`` -> (metric, acc); a bare known attribute (``status``) is an attribute."""
    if token.kind == "word":
        name = token.text.strip("`")
        attr = attributes.get(name.lower())
        if attr is None:
            raise _fail(
                token.at, f"{name!r} is not a key: write metrics.<name>, params.<name>,"
                " tags.<name> or attributes.<name>"
            )  # fmt: skip
        return "attribute", attr
    if token.kind != "ident":
        raise _fail(token.at, f"expected a key such as metrics.accuracy, got {token.text!r}")
    prefix, _, rest = token.text.partition(".")
    kind = KINDS.get(prefix.lower())
    if kind is None:
        raise _fail(
            token.at, f"unknown key type {prefix!r}: one of metrics, params, tags, attributes"
        )
    key = rest[1:-1] if rest[:1] in ("`", '"') else rest
    if not key:
        raise _fail(token.at, "empty key")
    if kind == "attribute":
        attr = attributes.get(key.lower())
        if attr is None:
            known = ", ".join(sorted(set(attributes.values())))
            raise _fail(token.at, f"unknown attribute {key!r}: one of {known}")
        key = attr
    return kind, key


class _Reader:
    def __init__(
        self,
        text: str,
        attributes: Mapping[str, str] = ATTRIBUTES,
        numeric: frozenset[str] = NUMERIC_ATTRIBUTES,
    ) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.end = len(text)
        self.attributes = attributes
        self.numeric = numeric

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, what: str) -> _Token:
        token = self.peek()
        if token is None:
            raise _fail(self.end, f"expected {what}, the filter ended")
        self.pos += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.upper() in words:
            self.pos += 1
            return True
        return False


def _value(reader: _Reader, kind: Kind, key: str, op: str) -> float | str | tuple[str, ...]:
    token = reader.take("a value")
    numeric = kind == "metric" or (kind == "attribute" and key in reader.numeric)
    if numeric:
        if token.kind != "number":
            raise _fail(token.at, f"{kind} {key!r} compares with a number, got {token.text!r}")
        return float(token.text)
    if token.kind != "string":
        raise _fail(token.at, f"{kind} {key!r} compares with quoted text, got {token.text!r}")
    return _unquote(token.text)


def _values(reader: _Reader) -> tuple[str, ...]:
    opening = reader.take("'('")
    if opening.text != "(":
        raise _fail(opening.at, f"IN takes a list in parentheses, got {opening.text!r}")
    items: list[str] = []
    while True:
        token = reader.take("a quoted value")
        if token.kind != "string":
            raise _fail(token.at, f"expected quoted text, got {token.text!r}")
        items.append(_unquote(token.text))
        sep = reader.take("',' or ')'")
        if sep.text == ")":
            return tuple(items)
        if sep.text != ",":
            raise _fail(sep.at, f"expected ',' or ')', got {sep.text!r}")


def _allowed(kind: Kind, key: str, numeric: frozenset[str]) -> frozenset[str]:
    if kind == "metric":
        return COMPARE
    if kind in ("param", "tag"):
        return TEXT_OPS | NULL_OPS
    if kind == "attribute":
        return COMPARE if key in numeric else TEXT_OPS | IN_OPS
    return TEXT_OPS | IN_OPS


def _clause(reader: _Reader) -> Clause:
    start = reader.take("a key")
    kind, key = _identifier(start, reader.attributes)
    op_token = reader.peek()
    if op_token is None:
        raise _fail(reader.end, f"expected a comparison after {start.text!r}")
    if reader.keyword("IS"):
        op = "IS NOT NULL" if reader.keyword("NOT") else "IS NULL"
        if not reader.keyword("NULL"):
            raise _fail(op_token.at, "expected IS NULL or IS NOT NULL")
    elif reader.keyword("NOT"):
        if not reader.keyword("IN"):
            raise _fail(op_token.at, "expected NOT IN")
        op = "NOT IN"
    elif reader.keyword("IN", "LIKE", "ILIKE"):
        op = op_token.text.upper()
    elif op_token.kind == "op":
        reader.pos += 1
        op = {"==": "=", "<>": "!="}.get(op_token.text, op_token.text)
    else:
        raise _fail(op_token.at, f"expected a comparison, got {op_token.text!r}")
    allowed_ops = _allowed(kind, key, reader.numeric)
    if op not in allowed_ops:
        allowed = ", ".join(sorted(allowed_ops))
        raise _fail(op_token.at, f"{op} does not apply to {kind} {key!r} (use {allowed})")
    if op in NULL_OPS:
        return Clause(kind, key, op, None)
    if op in IN_OPS:
        return Clause(kind, key, op, _values(reader))
    value = _value(reader, kind, key, op)
    status = kind == "attribute" and key == "status"
    if status and isinstance(value, str) and value.upper() not in FROM_MLFLOW:
        raise _fail(start.at, f"unknown status {value!r}: one of {', '.join(FROM_MLFLOW)}")
    return Clause(kind, key, op, value)


def parse_filter(
    text: str | None,
    attributes: Mapping[str, str] = ATTRIBUTES,
    numeric: frozenset[str] = NUMERIC_ATTRIBUTES,
) -> list[Clause]:
    """The clauses of an MLflow filter string (empty: every run).

    ``attributes`` (spelling -> name) and ``numeric`` say which ``attributes.`` keys exist:
    a run's by default; experiment search passes an experiment's.
    """
    if not text or not text.strip():
        return []
    reader = _Reader(text, attributes, numeric)
    clauses = [_clause(reader)]
    while (token := reader.peek()) is not None:
        if not reader.keyword("AND"):
            if token.kind == "word" and token.text.upper() == "OR":
                raise _fail(token.at, "MLflow's filter joins conditions with AND only")
            raise _fail(token.at, f"expected AND, got {token.text!r}")
        clauses.append(_clause(reader))
    return clauses


def parse_order(text: str, attributes: Mapping[str, str] = ATTRIBUTES) -> Order:
    """One ``order_by`` entry: a key, then ``ASC`` (the default) or ``DESC``."""
    reader = _Reader(text, attributes)
    token = reader.take("a key to order by")
    kind, key = _identifier(token, attributes)
    if kind == "dataset":
        raise _fail(token.at, "runs cannot be ordered by a dataset")
    ascending = True
    if reader.keyword("DESC"):
        ascending = False
    else:
        reader.keyword("ASC")
    extra = reader.peek()
    if extra is not None:
        raise _fail(extra.at, f"expected ASC or DESC, got {extra.text!r}")
    return Order(kind, key, ascending)


# -- planning: what SQL answers, and what is checked on each candidate ----------------------


@dataclass
class Plan:
    """RunQuery fields for the store, and the clauses left to check on each run."""

    metric_conditions: list[MetricCondition] = field(default_factory=list)
    param_texts: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    created_by: str | None = None
    since: float | None = None  # epoch seconds, inclusive
    until: float | None = None  # epoch seconds, exclusive
    run_ids: frozenset[str] | None = None  # only these (None: any)
    names: frozenset[str] | None = None  # named one of these (None: any name)
    parent: str | None = None  # children of this run
    rest: list[Clause] = field(default_factory=list)
    impossible: bool = False  # e.g. a SCHEDULED status: no run can match

    def query_fields(self) -> dict[str, Any]:
        """The RunQuery keyword arguments of the pushed-down clauses."""
        return {
            "metric_conditions": self.metric_conditions,
            "param_texts": self.param_texts,
            "tags": self.tags,
            "status": self.status,
            "created_by": self.created_by,
            "run_ids": sorted(self.run_ids or ()),
            "names": sorted(self.names or ()),
            "parent_ref": self.parent,
            "since": None if self.since is None else datetime.fromtimestamp(self.since, UTC),
            "until": None
            if self.until is None or self.until >= LAST_SECOND
            else datetime.fromtimestamp(self.until, UTC),
        }

    def narrow(self, now: frozenset[str] | None, values: float | str | tuple[str, ...] | None
               ) -> frozenset[str]:  # fmt: skip
        """The set ``now`` narrowed to ``values`` (one text or an ``IN`` list)."""
        given = frozenset(values) if isinstance(values, tuple) else frozenset({str(values)})
        found = given if now is None else now & given
        self.impossible |= not found
        return found

    def bound_start(self, op: str, ms: float) -> None:
        """Narrow the start-time window by ``start_time op ms`` (MLflow's whole milliseconds).

        A run's ``start_time`` is its start in seconds times 1,000, rounded: ``> ms`` holds
        from ``ms + 0.5`` ms on, ``>= ms`` from ``ms - 0.5``, and so on.
        """
        low = {">": ms + 0.5, ">=": ms - 0.5, "=": ms - 0.5}.get(op)
        high = {"<": ms - 0.5, "<=": ms + 0.5, "=": ms + 0.5}.get(op)
        if low is not None:
            self.since = max(self.since or 0.0, low / 1000)
        if high is not None:
            self.until = min(self.until or LAST_SECOND, high / 1000)
        if self.since is not None and self.until is not None and self.since >= self.until:
            self.impossible = True
        self.impossible |= (self.since or 0.0) > LAST_SECOND or (self.until or 1.0) <= 0


LAST_SECOND = 253_402_300_799.0  # 9999-12-31, the last time a store holds


def plan(clauses: list[Clause], field_tags: frozenset[str]) -> Plan:
    """Split clauses: what the store's query answers goes to SQL, the rest is checked per run.

    To SQL: metric thresholds, param and tag equality (params compared as MLflow's text,
    whatever their stored type), status and user equality, ``start_time`` comparisons, run
    ids and run names (``=`` or ``IN``; ``attributes.run_name`` or ``tags.mlflow.runName``)
    and ``tags.mlflow.parentRunId =``. Per run: ``!=``, ``LIKE``, other ``IN`` and
    ``IS NULL``, other attributes and the other tags that are chachaml fields (``field_tags``).
    """
    out = Plan()
    for c in clauses:
        if c.kind == "metric" and c.op != "!=" and isinstance(c.value, float):
            out.metric_conditions.append(MetricCondition(key=c.key, op=c.op, value=c.value))  # type: ignore[arg-type]
        elif c.kind == "param" and c.op == "=" and isinstance(c.value, str):
            if out.param_texts.get(c.key, c.value) != c.value:
                out.impossible = True
            out.param_texts[c.key] = c.value
        elif (
            c.kind == "attribute"
            and c.key == "start_time"
            and c.op in COMPARE - {"!="}
            and isinstance(c.value, float)
        ):
            out.bound_start(c.op, c.value)
        elif c.kind == "tag" and c.op == "=" and c.key not in field_tags:
            value = str(c.value)
            if out.tags.get(c.key, value) != value:
                out.impossible = True
            out.tags[c.key] = value
        elif c.kind == "attribute" and c.key == "status" and c.op == "=":
            status = FROM_MLFLOW[str(c.value).upper()]
            if str(c.value).upper() == "SCHEDULED" or out.status not in (None, status):
                out.impossible = True
            out.status = status
        elif c.kind == "attribute" and c.key == "run_id" and c.op in ("=", "IN"):
            out.run_ids = out.narrow(out.run_ids, c.value)
        elif (c.kind, c.key) in (("attribute", "run_name"), ("tag", RUN_NAME)) and c.op in (
            "=",
            "IN",
        ):
            out.names = out.narrow(out.names, c.value)
        elif c.kind == "tag" and c.key == PARENT and c.op == "=" and isinstance(c.value, str):
            if out.parent not in (None, c.value):
                out.impossible = True
            out.parent = c.value
        elif c.kind == "attribute" and c.key == "user_id" and c.op == "=":
            if out.created_by not in (None, c.value):
                out.impossible = True
            out.created_by = str(c.value)
        else:
            out.rest.append(c)
    return out


def _like(pattern: str, text: str, fold: bool) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE | re.DOTALL if fold else re.DOTALL) is not None


def compare(op: str, have: Any, want: Any) -> bool:
    """``have op want`` as MLflow evaluates it: an absent value only passes ``IS NULL``."""
    if have is None:
        return op == "IS NULL"
    if op == "IS NULL":
        return False
    if op == "IS NOT NULL":
        return True
    if op == "IN":
        return have in want
    if op == "NOT IN":
        return have not in want
    if op in ("LIKE", "ILIKE"):
        return _like(str(want), str(have), op == "ILIKE")
    checks: dict[str, Callable[[Any, Any], bool]] = {
        "=": lambda a, b: bool(a == b),
        "!=": lambda a, b: bool(a != b),
        ">": lambda a, b: bool(a > b),
        ">=": lambda a, b: bool(a >= b),
        "<": lambda a, b: bool(a < b),
        "<=": lambda a, b: bool(a <= b),
    }
    return checks[op](have, want)


def attribute(run: RunInfo, key: str) -> Any:
    """A run attribute as MLflow compares and orders it."""
    values: dict[str, Any] = {
        "run_id": run.id,
        "run_name": run.name if run.name is not None else run.tags.get(RUN_NAME),
        "status": TO_MLFLOW[run.status],
        "user_id": run.created_by,
        "start_time": millis(run.started_at),
        "end_time": millis(run.ended_at),
        "lifecycle_stage": "deleted" if run.archived else "active",
        "artifact_uri": None,
    }
    return values.get(key)


def value_of(run: RunInfo, params: Mapping[str, ParamValue], kind: Kind, key: str) -> Any:
    """What a clause or ordering of ``kind.key`` reads from a run (``None``: absent or NaN)."""
    if kind == "metric":
        return run.metrics.get(key)
    if kind == "param":
        return param_text(params[key]) if key in params else None
    if kind == "tag":
        return run_tags(run).get(key)
    if kind == "attribute":
        return attribute(run, key)
    return None


def matches(run: RunInfo, params: Mapping[str, ParamValue], clauses: list[Clause]) -> bool:
    """Whether a run passes every clause (MLflow's semantics: absent or NaN fails)."""
    for c in clauses:
        if c.kind == "dataset":
            raise InvalidInput("filtering runs by dataset is not supported yet")
        have = value_of(run, params, c.kind, c.key)
        want = c.value
        if c.kind == "attribute" and c.key == "status" and isinstance(want, str):
            want = want.upper()
        if not compare(c.op, have, want):
            return False
    return True
