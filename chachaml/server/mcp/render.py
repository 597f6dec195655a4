"""Compact text renderings of tool results: short tables an LLM reads well, never a data dump."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from chachaml.records.runs import BestRun, Comparison, Dataset, Experiment, Run

MAX_CELL = 60
MAX_METRIC_COLUMNS = 5
MAX_ROWS = 50
MAX_NOTE = 2000


def cell(value: object) -> str:
    """One table cell: numbers to 4 significant digits, times to the second, long text cut."""
    if type(value) is str:  # the common case first: tables are mostly ids and names
        text = value
    elif value is None:
        return ""
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, datetime):
        text = value.isoformat(" ", "seconds")[:19]  # YYYY-MM-DD HH:MM:SS
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    if "\n" in text or "|" in text:
        text = text.replace("\n", " ").replace("|", "/")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A pipe-separated table with a header rule."""
    lines = [" | ".join(headers), " | ".join("-" * max(3, len(h)) for h in headers)]
    lines += [" | ".join(cell(c) for c in row) for row in rows]
    return "\n".join(lines)


def more_note(shown: int, total: int, hint: str) -> str:
    """``"N more"`` when a result was cut to its limit; empty otherwise."""
    extra = total - shown
    return f"\n({extra} more; {hint})" if extra > 0 else ""


def more_runs_note(more: bool) -> str:
    """The note under a run listing cut to its limit (counting every match would be slow)."""
    return "\n(more runs match; raise limit or narrow with experiment/since/until)" if more else ""


def metric_columns(metrics: Sequence[Mapping[str, float | None]]) -> list[str]:
    """The metrics most runs share, at most a handful, for run tables (one map per run)."""
    if metrics:
        first = metrics[0].keys()
        if len(first) <= MAX_METRIC_COLUMNS and all(m.keys() == first for m in metrics):
            return sorted(first)  # the usual case: every run logged the same metrics
    counts = Counter(k for m in metrics for k in m)
    return sorted(k for k, _ in counts.most_common(MAX_METRIC_COLUMNS))


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def runs_table(runs: Sequence[Mapping[str, Any]]) -> str:
    """Runs as rows: full id (to pass to other tools), identity, status, start, metrics.

    Takes the runs as JSON records (``RunInfo`` dumped in JSON mode, as structured content
    carries them), so a tool's text and structured content cannot disagree. Ids, statuses
    and times need no escaping, so only the free-text columns go through :func:`cell`
    (listings are the most frequent answer an agent asks for).
    """
    keys = metric_columns([r["metrics"] for r in runs])
    headers = ["run_id", "experiment", "name", "status", "user", "started", *keys]
    lines = [" | ".join(headers), " | ".join("-" * max(3, len(h)) for h in headers)]
    for r in runs:
        metrics = r["metrics"]
        started = r["started_at"]  # ISO 8601: YYYY-MM-DDTHH:MM:SS...
        lines.append(
            " | ".join(
                [
                    r["id"],
                    cell(r["experiment"]),
                    cell(r["name"]),
                    r["status"],
                    cell(r["created_by"]),
                    f"{started[:10]} {started[11:19]}",
                    *[_number(metrics.get(k)) for k in keys],
                ]
            )
        )
    return "\n".join(lines)


def runs_text(runs: Sequence[Mapping[str, Any]], more: bool, what: str) -> str:
    """A run listing (JSON records, see :func:`runs_table`) with a note when more matched."""
    if not runs:
        return f"No runs match ({what})."
    head = f"{len(runs)}{'+' if more else ''} runs ({what}):"
    return f"{head}\n{runs_table(runs)}{more_runs_note(more)}"


def _section(title: str, body: str) -> str:
    return f"\n{title}:\n{body}"


def run_text(run: Run) -> str:
    """One run: header, params, metric summaries, tags, datasets, artifacts, note."""
    lines = [
        f"Run {run.id} ({run.name or 'unnamed'}) in experiment {run.experiment!r}",
        f"status: {run.status}; user: {run.created_by}; started: {cell(run.started_at)}"
        + (f"; ended: {cell(run.ended_at)}" if run.ended_at else ""),
    ]
    if run.error:
        lines.append(f"error: {cell(run.error)}")
    if (stop := run.stop_request) is not None:
        lines.append(f"stop requested by {stop.user or 'unknown'} at {cell(stop.requested_at)}"
                     + (f": {cell(stop.reason)}" if stop.reason else ""))  # fmt: skip
    if run.parent_id:
        lines.append(f"parent run: {run.parent_id}")
    if run.children:
        lines.append(f"child runs: {', '.join(run.children[:20])}")
    text = "\n".join(lines)
    if run.params:
        items = sorted(run.params.items())
        body = table(["param", "value"], items[:MAX_ROWS])
        text += _section("params", body + more_note(min(len(items), MAX_ROWS), len(items), ""))
    if run.metric_summaries:
        summaries = sorted(run.metric_summaries.values(), key=lambda s: s.key)
        rows = [[s.key, s.last, s.step, s.min, s.max, s.count] for s in summaries[:MAX_ROWS]]
        body = table(["metric", "last", "step", "min", "max", "points"], rows)
        text += _section("metrics", body + more_note(len(rows), len(summaries), ""))
    if run.tags:
        text += _section("tags", table(["tag", "value"], sorted(run.tags.items())[:MAX_ROWS]))
    if run.datasets:
        text += _section("datasets", datasets_table(run.datasets))
    if run.artifacts:
        rows = [[a.name, a.content_type, a.size] for a in run.artifacts[:MAX_ROWS]]
        text += _section("artifacts", table(["artifact", "type", "bytes"], rows))
    if run.note:
        note = run.note if len(run.note) <= MAX_NOTE else run.note[:MAX_NOTE] + "…"
        text += _section("note", note)
    return text


def datasets_table(datasets: Sequence[Dataset]) -> str:
    """Datasets as rows."""
    rows = [
        [d.role, d.name, d.n_rows, d.n_cols, d.source, d.digest and d.digest[:12]] for d in datasets
    ]
    return table(["role", "name", "rows", "cols", "source", "digest"], rows)


def comparison_text(comp: Comparison) -> str:
    """Runs side by side: differing params first, then every metric."""
    ids = [r.id for r in comp.runs]
    names = [r.name or r.id[:8] for r in comp.runs]
    parts = [
        f"Comparing {len(ids)} runs: "
        + ", ".join(f"{n} = {i}" for n, i in zip(names, ids, strict=True))
    ]
    same = [k for k in comp.params if k not in comp.differing_params]
    if comp.differing_params:
        rows = [[k, *(comp.params[k].get(i) for i in ids)] for k in comp.differing_params]
        parts.append("params that differ:\n" + table(["param", *names], rows[:MAX_ROWS]))
    if same:
        parts.append(f"params equal in all runs: {', '.join(same[:MAX_ROWS])}")
    if comp.metrics:
        rows = [[k, *(vals.get(i) for i in ids)] for k, vals in comp.metrics.items()]
        parts.append("latest metrics:\n" + table(["metric", *names], rows[:MAX_ROWS]))
    return "\n".join(parts)


def best_text(best: BestRun | None, metric: str, scope: str) -> str:
    """The winning run, or why there is none."""
    if best is None:
        return f"No run has logged metric {metric!r} ({scope})."
    r = best.run
    return (
        f"Best run by {best.direction} {best.metric} ({scope}): {r.id}"
        f" ({r.name or 'unnamed'}, experiment {r.experiment!r}, {r.status})"
        f" with {best.metric} = {best.value:.6g} at step {best.step}"
    )


def experiments_text(experiments: Sequence[Experiment], total: int) -> str:
    """Experiments as rows, most recently active first."""
    if not experiments:
        return "No experiments yet."
    rows = [[e.name, e.run_count, e.owner, e.last_activity, e.description] for e in experiments]
    body = table(["experiment", "runs", "owner", "last activity", "description"], rows)
    return f"{total} experiments:\n{body}" + more_note(len(experiments), total, "")


def records_text(records: Sequence[dict[str, Any]], more: bool) -> str:
    """Flat run records as a table of their columns (metrics and params included)."""
    if not records:
        return "No runs to export."
    columns = list(dict.fromkeys(k for r in records for k in r))
    rows = [[r.get(c) for c in columns] for r in records]
    head = f"{len(records)}{'+' if more else ''} runs as records"
    return f"{head}:\n{table(columns, rows)}{more_runs_note(more)}"


def tags_text(run_id: str, tags: dict[str, str]) -> str:
    """A run's tags."""
    if not tags:
        return f"Run {run_id} has no tags."
    return f"Tags of run {run_id}:\n" + table(["tag", "value"], sorted(tags.items()))
