"""The run filter language: one expression over metrics, params, tags, status, user and dates.

``metrics.accuracy > 0.9 and params.optimizer = "adam" and status = completed and
started > 2026-01-01`` reads into the fields of a :class:`~chachaml.records.runs.RunQuery`,
so a filter typed in the UI (or given to a tool) runs as the store's own query on every
backend. Conditions are joined by ``and`` only (each one narrows, as every RunQuery field
does). A mistake is ``InvalidInput`` naming the character where reading stopped, so the
person who typed it can fix it in place.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from chachaml.errors import InvalidInput
from chachaml.records import validation as v
from chachaml.records.runs import RUN_STATUSES, MetricCondition, ParamValue

MAX_LENGTH = 2000
MAX_CONDITIONS = 20
FIELDS = ("metrics.", "params.", "tags.", "status", "user", "experiment", "name", "started")
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>>=|<=|!=|==|>|<|=|~)
    | (?P<word>[^\s<>=!~"']+)
    | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_COMPARE = (">", ">=", "<", "<=", "=")


@dataclass
class RunFilter:
    """What an expression asks for, as RunQuery fields (``since``/``until`` as datetimes)."""

    metric_conditions: list[MetricCondition] = field(default_factory=list)
    params: dict[str, ParamValue] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    status: str | None = None
    created_by: str | None = None
    experiment: str | None = None
    experiment_contains: str | None = None
    name_contains: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class _Token:
    kind: str  # string, op, word
    text: str
    at: int  # 0-based offset in the expression


def _fail(at: int, message: str) -> InvalidInput:
    return InvalidInput(f"filter, at character {at + 1}: {message}")


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.lastgroup is None:  # only blanks were left
            break
        kind, start = match.lastgroup, match.start(match.lastgroup)
        if kind == "bad":
            raise _fail(start, f'unexpected {match.group(kind)!r} (quote text with "...")')
        out.append(_Token(kind, match.group(kind), start))
        pos = match.end()
    return out


def _unquote(token: _Token) -> str:
    if token.kind != "string":
        return token.text
    body = token.text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _param_value(token: _Token) -> ParamValue:
    """A quoted value is text; a bare one is typed as JSON (``0.01``, ``true``) if it parses."""
    if token.kind == "string":
        return _unquote(token)
    try:
        parsed = json.loads(token.text)
    except ValueError:
        return token.text
    return parsed if isinstance(parsed, str | int | float | bool) else token.text


def _number(token: _Token, what: str) -> float:
    try:
        value = float(token.text) if token.kind == "word" else None
    except ValueError:
        value = None
    if value is None or value != value or value in (float("inf"), float("-inf")):
        raise _fail(token.at, f"{what} needs a finite number, got {token.text!r}")
    return value


def _when(token: _Token) -> tuple[datetime, bool]:
    """A date or datetime (UTC unless it says), and whether it was a bare date (a whole day)."""
    text = _unquote(token)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(token.at, f"started needs a date like 2026-01-31, got {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), len(text) == 10


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.end = len(text)
        self.i = 0

    def next(self, expected: str) -> _Token:
        if self.i >= len(self.tokens):
            raise _fail(self.end, f"expected {expected}, but the filter ends")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def more(self) -> bool:
        return self.i < len(self.tokens)


def parse_filter(text: str | None) -> RunFilter:
    """The filter an expression asks for; an empty one filters nothing."""
    out = RunFilter()
    text = (text or "").strip()
    if len(text) > MAX_LENGTH:
        raise InvalidInput(f"filter is longer than {MAX_LENGTH} characters")
    reader, count = _Reader(text), 0
    while reader.more():
        if count:
            joiner = reader.next("'and'")
            if joiner.text.lower() != "and":
                hint = " (only 'and' joins conditions)" if joiner.text.lower() == "or" else ""
                raise _fail(joiner.at, f"expected 'and' between conditions, got {joiner.text!r}"
                            + hint)  # fmt: skip
        count += 1
        if count > MAX_CONDITIONS:
            raise InvalidInput(f"filter has more than {MAX_CONDITIONS} conditions")
        _condition(reader, out)
    return out


def _condition(reader: _Reader, out: RunFilter) -> None:
    key = reader.next("a key such as metrics.accuracy, params.lr, tags.team or status")
    if key.kind != "word":
        raise _fail(key.at, f"expected a key such as metrics.accuracy, got {key.text!r}")
    op = reader.next(f"an operator (> >= < <= = ~) after {key.text!r}")
    if op.kind != "op":
        raise _fail(op.at, f"expected an operator (> >= < <= = ~) after {key.text!r}, got "
                    f"{op.text!r}")  # fmt: skip
    value = reader.next(f"a value after {key.text} {op.text}")
    if value.kind == "op":
        raise _fail(value.at, f"expected a value after {key.text} {op.text}, got {value.text!r}")
    name, sign = key.text, "=" if op.text == "==" else op.text
    kind, _, rest = name.partition(".")
    prefixed = kind in ("metrics", "metric") and bool(rest)
    if prefixed or ("." not in name and name not in FIELDS):  # a bare key is a metric
        metric = rest if prefixed else name
        _only(op, sign, _COMPARE, metric)
        number = _number(value, metric)
        out.metric_conditions.append(
            MetricCondition(key=v.key(metric, "metric"), op=sign, value=number)  # type: ignore[arg-type]
        )
    elif kind in ("params", "param") and rest:
        _only(op, sign, ("=",), name)
        _once(key, rest in out.params)
        out.params[v.key(rest, "param")] = _param_value(value)
    elif kind in ("tags", "tag") and rest:
        _only(op, sign, ("=",), name)
        _once(key, rest in out.tags)
        out.tags[v.key(rest, "tag")] = _unquote(value)
    elif name == "status":
        _only(op, sign, ("=",), name)
        _once(key, out.status is not None)
        status = _unquote(value)
        if status not in RUN_STATUSES:
            raise _fail(value.at, f"status is one of {', '.join(RUN_STATUSES)}, got {status!r}")
        out.status = status
    elif name == "user":
        _only(op, sign, ("=",), name)
        _once(key, out.created_by is not None)
        out.created_by = _unquote(value)
    elif name in ("experiment", "name"):
        _only(op, sign, ("=", "~"), name)
        if name == "name":
            _once(key, out.name_contains is not None)
            out.name_contains = _unquote(value)
        elif sign == "=":
            _once(key, out.experiment is not None)
            out.experiment = _unquote(value)
        else:
            _once(key, out.experiment_contains is not None)
            out.experiment_contains = _unquote(value)
    elif name == "started":
        _only(op, sign, _COMPARE, name)
        _started(out, sign, value)
    else:
        raise _fail(key.at, f"unknown key {name!r}: use metrics.NAME, params.NAME, tags.NAME, "
                    "status, user, experiment, name or started")  # fmt: skip


def _only(op: _Token, sign: str, allowed: tuple[str, ...], name: str) -> None:
    if sign not in allowed:
        raise _fail(op.at, f"{name} takes {' '.join(allowed)}, not {op.text}")


def _once(key: _Token, seen: bool) -> None:
    if seen:
        raise _fail(key.at, f"{key.text} is given twice")


def _started(out: RunFilter, sign: str, value: _Token) -> None:
    """``started`` bounds: a bare date covers its whole day (``<= 2026-01-31`` includes it)."""
    when, day = _when(value)
    after = when + timedelta(days=1) if day else when
    since = {">": after, ">=": when, "=": when}.get(sign)
    until = {"<": when, "<=": after, "=": after if day else when + timedelta(seconds=1)}.get(sign)
    if since is not None:
        out.since = since if out.since is None else max(out.since, since)
    if until is not None:
        out.until = until if out.until is None else min(out.until, until)
