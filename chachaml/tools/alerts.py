"""Alert operations: define rules, evaluate them against runs, read what fired.

A rule looks at a run's **latest** value of a metric (``threshold``: ``op`` against a number;
``drop``: a fall of more than ``drop_pct`` percent below a baseline), or at time passing
(``no_completed_run`` for an experiment, ``silent_run`` for a run). A rule fires at most once
per run (per quiet spell of an experiment) and not again within its cooldown; what fires is
recorded as an event and, when the rule has a webhook, queued for delivery in the same
transaction (:mod:`chachaml.tools.deliveries` sends it).

Evaluation entry points: :func:`evaluate_run` (the metric rules for one run: the tracking
client calls it when a run ends, the HTTP write API when metrics arrive) and
:func:`check_alerts` (every rule, now). Evaluation is a few store queries per rule and never
touches the network, so callers may run it inline.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from urllib.parse import urlsplit

from chachaml.errors import InvalidInput, NotFound
from chachaml.records import validation as v
from chachaml.records.alerts import Alert, AlertEvent, AlertKind, AlertRule, NewAlert, NewAlertEvent
from chachaml.records.runs import RunInfo, RunQuery, to_datetime
from chachaml.store.protocol import ServerEvaluatedAlerts, Store
from chachaml.store.server_state import ServerStore, is_server_store
from chachaml.tools.webhooks import ALLOW_PRIVATE_ENV, Delivery, condition, payload, refused_target

log = logging.getLogger("chachaml")

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
}
MAX_BASELINE_RUNS = 100
DEFAULT_LOOKBACK_HOURS = 24 * 7

# argument checks


def check_webhook_url(value: object) -> str:
    """A webhook URL: ``http://`` or ``https://`` with a host."""
    if not isinstance(value, str):
        raise InvalidInput(f"webhook_url must be an http(s) URL string, got {value!r}")
    v.text(value, "webhook_url", v.MAX_URL)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"webhook_url must be an http:// or https:// URL, got {value!r}")
    return value.strip()


def _positive(value: object, what: str) -> float:
    number = v.finite(value, what)
    if number <= 0:
        raise InvalidInput(f"{what} must be positive, got {value!r}")
    return number


def _rule_kind(
    op: object, threshold: object, drop_pct: object, hours: object, minutes: object
) -> AlertKind:
    given: list[AlertKind] = []
    if op is not None or threshold is not None:
        given.append("threshold")
    if drop_pct is not None:
        given.append("drop")
    if hours is not None:
        given.append("no_completed_run")
    if minutes is not None:
        given.append("silent_run")
    if len(given) != 1:
        raise InvalidInput(
            "an alert is exactly one of: op= and threshold= (a threshold on a metric),"
            " drop_pct= (a drop against a baseline), no_completed_run_hours=,"
            f" or silent_minutes=; got {', '.join(given) or 'none of them'}"
        )
    return given[0]


def build_rule(
    name: str,
    user: str,
    *,
    metric_key: str | None = None,
    op: str | None = None,
    threshold: float | None = None,
    experiment: str | None = None,
    webhook_url: str | None = None,
    drop_pct: float | None = None,
    baseline_model: str | None = None,
    baseline_runs: int | None = None,
    no_completed_run_hours: float | None = None,
    silent_minutes: float | None = None,
    cooldown_minutes: float = 0.0,
    secret: str | None = None,
    muted: bool | None = None,
) -> NewAlert:
    """Validate the arguments of :func:`set_alert` into a rule for the store.

    ``muted=None`` keeps the muted state of a rule it replaces (a new one starts unmuted).
    """
    kind = _rule_kind(op, threshold, drop_pct, no_completed_run_hours, silent_minutes)
    rule: dict[str, object] = {"kind": kind}
    if kind in ("threshold", "drop"):
        if metric_key is None:
            raise InvalidInput(f"a {kind} alert needs metric_key= (the metric to watch)")
        rule["metric_key"] = v.key(metric_key, "metric_key")
    elif metric_key is not None:
        raise InvalidInput(f"a {kind} alert watches no metric; leave metric_key out")
    if kind == "threshold":
        if op is None or threshold is None:
            raise InvalidInput("a threshold alert needs both op= and threshold=")
        rule["op"] = v.op(op)
        rule["threshold"] = v.finite(threshold, "threshold")
    if kind == "drop":
        rule["drop_pct"] = _positive(drop_pct, "drop_pct")
        if baseline_model is not None and baseline_runs is not None:
            raise InvalidInput("give baseline_model= or baseline_runs=, not both")
        if baseline_model is not None:
            rule["baseline_model"] = v.name(baseline_model, "baseline_model")
        else:
            runs = 5 if baseline_runs is None else baseline_runs
            if isinstance(runs, bool) or not isinstance(runs, int) or not 1 <= runs <= 100:
                raise InvalidInput(f"baseline_runs must be an integer from 1 to 100, got {runs!r}")
            rule["baseline_runs"] = runs
    elif baseline_model is not None or baseline_runs is not None:
        raise InvalidInput("baseline_model= and baseline_runs= belong to drop_pct= alerts")
    if kind == "no_completed_run":
        rule["window_seconds"] = _positive(no_completed_run_hours, "no_completed_run_hours") * 3600
    if kind == "silent_run":
        rule["window_seconds"] = _positive(silent_minutes, "silent_minutes") * 60
    cooldown = v.finite(cooldown_minutes, "cooldown_minutes")
    if cooldown < 0:
        raise InvalidInput(f"cooldown_minutes must be >= 0, got {cooldown_minutes!r}")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise InvalidInput("secret must be a non-empty string")
    v.optional_text(secret, "secret", v.MAX_FILTER)
    if secret is not None and webhook_url is None:
        raise InvalidInput("secret= signs webhook deliveries; give webhook_url= too")
    return NewAlert(
        name=v.name(name, "alert name"),
        experiment=None if experiment is None else v.name(experiment, "experiment"),
        webhook_url=None if webhook_url is None else check_webhook_url(webhook_url),
        cooldown_seconds=cooldown * 60,
        secret=secret,
        muted=None if muted is None else muted is True,
        created_by=v.name(user, "user"),
        **rule,  # type: ignore[arg-type]
    )


def check_rule(new: NewAlert) -> NewAlert:
    """A rule that arrived whole (over HTTP) checked as :func:`build_rule` checks arguments.

    Its windows and cooldown are kept to the second as given, not converted to hours or
    minutes and back.
    """
    window = new.window_seconds
    if window is not None and new.kind not in ("no_completed_run", "silent_run"):
        raise InvalidInput(f"a {new.kind} alert has no window; leave window_seconds out")
    if window is None and new.kind in ("no_completed_run", "silent_run"):
        raise InvalidInput(f"a {new.kind} alert needs window_seconds")
    hours = window / 3600 if window is not None and new.kind == "no_completed_run" else None
    minutes = window / 60 if window is not None and new.kind == "silent_run" else None
    checked = build_rule(
        new.name,
        new.created_by,
        metric_key=new.metric_key,
        op=new.op,
        threshold=new.threshold,
        experiment=new.experiment,
        webhook_url=new.webhook_url,
        drop_pct=new.drop_pct,
        baseline_model=new.baseline_model,
        baseline_runs=new.baseline_runs,
        no_completed_run_hours=hours,
        silent_minutes=minutes,
        cooldown_minutes=new.cooldown_seconds / 60,
        secret=new.secret,
        muted=new.muted,
    )
    if checked.kind != new.kind:
        raise InvalidInput(f"kind is {new.kind!r} but the fields given make a {checked.kind} alert")
    exact = {"window_seconds": window, "cooldown_seconds": new.cooldown_seconds}
    return checked.model_copy(update=exact)


# rules


async def set_alert(store: Store, new: NewAlert, *, allow_private: bool = False) -> Alert:
    """Create a rule, or replace the one with the same name (its history is kept).

    A webhook on a loopback, private, link-local, multicast or reserved address (as written,
    or as its name resolves now) is refused unless ``allow_private``
    (``CHACHAML_WEBHOOK_ALLOW_PRIVATE=true``); delivery checks again.
    """
    if new.webhook_url is not None and not allow_private:
        why = await refused_target(new.webhook_url)
        if why is not None:
            raise InvalidInput(
                f"alert {new.name!r}: webhook_url refused, {why}; webhooks go to public"
                f" addresses unless {ALLOW_PRIVATE_ENV}=true"
            )
    return (await store.set_alert(new)).public()


async def mute_alert(store: Store, name: str, muted: bool) -> Alert:
    """Mute a rule (kept, not evaluated: it fires nothing) or unmute it; nothing else changes.

    The rule is set again whole, webhook URL and secret included, which only the server's
    own store holds: a remote store has its server do it (a rule read over HTTP lacks them).
    ``NotFound`` listing the rules if there is none by that name.
    """
    wanted = v.name(name, "alert name")
    if not isinstance(muted, bool):
        raise InvalidInput(f"muted must be true or false, got {muted!r}")
    if not is_server_store(store):
        if isinstance(store, ServerEvaluatedAlerts):
            return (await store.mute_alert(wanted, muted)).public()
        raise InvalidInput(f"the store at {store.url} cannot mute alert rules")
    rule = await store.get_alert(wanted)
    new = NewAlert(**rule.model_dump(include=set(NewAlert.model_fields)) | {"muted": muted})
    return (await store.set_alert(new)).public()


async def list_alerts(store: Store) -> list[Alert]:
    """Every alert rule, by name, with when it last fired (webhooks shown by host only)."""
    return [rule.public() for rule in await store.list_alerts()]


async def get_alert(store: Store, name: str) -> Alert:
    """One alert rule."""
    return (await store.get_alert(v.name(name, "alert name"))).public()


async def delete_alert(store: Store, name: str) -> None:
    """Delete a rule and its history."""
    await store.delete_alert(v.name(name, "alert name"))


async def alert_history(store: Store, name: str | None = None, limit: int = 50) -> list[AlertEvent]:
    """Events fired by one rule (or every rule), newest first, with delivery attempts."""
    wanted = None if name is None else v.name(name, "alert name")
    count = v.limit(limit, 50, 1000)
    assert count is not None
    return await store.alert_events(wanted, count)


# evaluation


async def _baseline(store: Store, rule: AlertRule, run: RunInfo) -> tuple[float, str] | None:
    """The baseline value of a drop rule for a run, and where it came from."""
    key = rule.metric_key
    assert key is not None
    if rule.baseline_model is not None:
        versions = await store.list_model_versions(rule.baseline_model, "production")
        if not versions or versions[0].run_id == run.id:
            return None
        value = versions[0].metrics.get(key)
        source = f"production version {versions[0].version} of {rule.baseline_model}"
        return None if value is None else (value, source)
    wanted = rule.baseline_runs or 1
    earlier = await store.query_runs(
        RunQuery(
            experiment=run.experiment,
            status="completed",
            until=run.started_at,
            limit=min(wanted * 4, MAX_BASELINE_RUNS * 4),
        )
    )
    values = [
        value
        for r in earlier
        if r.id != run.id and (value := r.metrics.get(key)) is not None and math.isfinite(value)
    ][:wanted]
    if not values:
        return None
    return sum(values) / len(values), f"the mean of the last {len(values)} completed runs"


async def _judge(store: Store, rule: AlertRule, run: RunInfo, now: float) -> NewAlertEvent | None:
    """Whether a metric rule fires for a run, as the event to record."""
    key = rule.metric_key
    assert key is not None
    value = run.metrics.get(key)
    if value is None or (rule.experiment is not None and rule.experiment != run.experiment):
        return None
    base: float | None = None
    if rule.kind == "threshold":
        assert rule.op is not None and rule.threshold is not None
        if not COMPARE[rule.op](value, rule.threshold):
            return None
        limit = rule.threshold
        message = f"{key} is {value:.6g} on run {run.id} ({run.experiment}): {condition(rule)}"
    else:
        found = await _baseline(store, rule, run)
        if found is None or found[0] == 0 or not math.isfinite(value):
            return None
        base, source = found
        assert rule.drop_pct is not None
        drop = (base - value) / abs(base) * 100
        if not drop > rule.drop_pct:
            return None
        limit = base - abs(base) * rule.drop_pct / 100
        message = (
            f"{key} is {value:.6g} on run {run.id} ({run.experiment}), {drop:.1f}% below"
            f" {base:.6g}, {source}; the rule allows {rule.drop_pct:g}%"
        )
    return NewAlertEvent(
        subject=run.id,
        run_id=run.id,
        experiment=run.experiment,
        value=value,
        threshold=limit,
        baseline=base,
        message=message,
        fired_at=now,
        webhook=rule.webhook_url is not None,
    )


async def _stale_events(store: ServerStore, rule: AlertRule, now: float) -> list[NewAlertEvent]:
    assert rule.window_seconds is not None
    cutoff = now - rule.window_seconds
    webhook = rule.webhook_url is not None
    if rule.kind == "no_completed_run":
        hours = rule.window_seconds / 3600
        return [
            NewAlertEvent(
                subject=f"experiment:{s.experiment}:{s.last_run_id or '-'}",
                run_id=s.last_run_id,
                experiment=s.experiment,
                message=(
                    f"experiment {s.experiment} has had no completed run for {hours:g} h"
                    + (
                        f" (the last ended {s.last_completed_at.isoformat(timespec='seconds')})"
                        if s.last_completed_at
                        else " (none has completed yet)"
                    )
                ),
                fired_at=now,
                webhook=webhook,
            )
            for s in await store.stale_experiments(rule.experiment, cutoff)
        ]
    minutes = rule.window_seconds / 60
    return [
        NewAlertEvent(
            subject=s.run_id,
            run_id=s.run_id,
            experiment=s.experiment,
            message=(
                f"run {s.run_id} ({s.experiment}) has logged nothing for {minutes:g} min"
                f" (last activity {s.last_activity.isoformat(timespec='seconds')})"
            ),
            fired_at=now,
            webhook=webhook,
        )
        for s in await store.silent_runs(rule.experiment, cutoff)
    ]


async def _fire(
    store: ServerStore, rule: AlertRule, found: Sequence[NewAlertEvent], delivery: Delivery
) -> list[AlertEvent]:
    """Record each firing; one with a webhook queues its body (sent later by a worker)."""
    fired: list[AlertEvent] = []
    for new in found:
        if new.webhook:
            new = new.model_copy(update={"payload": payload(rule, new, delivery.base_url)})
        event = await store.fire_alert(rule.name, new)
        if event is not None:
            fired.append(event)
    return fired


async def evaluate_run(
    store: Store, run_id: str, delivery: Delivery | None = None, *, now: float | None = None
) -> list[AlertEvent]:
    """Evaluate the metric rules (threshold and drop) against one run's latest values.

    Returns the events fired now; their webhooks are queued (delivery ``pending``), not sent:
    ``delivery`` only gives the run links' base URL. A rule that cannot be evaluated (its
    baseline model is gone, say) is logged and skipped; only store failures raise. Call it
    when a run ends or new metrics arrive: it costs a few queries, no network.

    A store whose server evaluates the rules (a remote store) fires nothing here: its server
    did when the run's metrics arrived and when it ended.
    """
    if not is_server_store(store):
        return []
    rules = [
        r for r in await store.list_alerts() if r.kind in ("threshold", "drop") and not r.muted
    ]
    if not rules:
        return []
    run = await store.get_run(v.run_id(run_id))
    when = time.time() if now is None else now
    fired: list[AlertEvent] = []
    for rule in rules:
        try:
            found = await _judge(store, rule, run, when)
        except NotFound as exc:
            log.warning("chachaml: alert %r cannot be evaluated: %s", rule.name, exc)
            continue
        if found is not None:
            fired += await _fire(store, rule, [found], delivery or Delivery())
    return fired


async def check_alerts(
    store: Store,
    delivery: Delivery | None = None,
    *,
    now: float | None = None,
    lookback_hours: float = DEFAULT_LOOKBACK_HOURS,
) -> list[AlertEvent]:
    """Evaluate every rule now and return the events fired (webhooks queued, not yet sent).

    Metric rules look at the runs started in the last ``lookback_hours``; staleness rules at
    the clock (``now``, epoch seconds, defaults to the current time). A remote store has its
    server evaluate them (one request), with the server's webhook settings.
    """
    if not is_server_store(store):
        if isinstance(store, ServerEvaluatedAlerts):
            return await store.check_alerts(now, lookback_hours)
        raise InvalidInput(f"the store at {store.url} cannot evaluate alert rules")
    when = time.time() if now is None else v.finite(now, "now")
    hours = _positive(lookback_hours, "lookback_hours")
    # a lookback past 1970 means every run: no stored run started before the epoch
    since = max(to_datetime(when) - timedelta(hours=min(hours, 1e7)), to_datetime(0.0))
    how = delivery or Delivery()
    rules = [r for r in await store.list_alerts() if not r.muted]
    runs: list[RunInfo] = []
    if any(r.kind in ("threshold", "drop") for r in rules):
        runs = await store.query_runs(RunQuery(since=since, limit=None))
    fired: list[AlertEvent] = []
    for rule in rules:
        try:
            if rule.kind in ("threshold", "drop"):
                found = [e for r in reversed(runs) if (e := await _judge(store, rule, r, when))]
            else:
                found = await _stale_events(store, rule, when)
        except NotFound as exc:
            log.warning("chachaml: alert %r cannot be evaluated: %s", rule.name, exc)
            continue
        fired += await _fire(store, rule, found, how)
    return fired
