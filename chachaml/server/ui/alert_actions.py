"""The Alerts page's writes: create or edit a rule, mute or unmute it, delete it, test-fire it.

Same rules as :mod:`chachaml.server.ui.actions`: JSON POSTs only, under the access layer
(other origins refused; in team mode a write token, or a signed-in session with its CSRF
header), attributed to the caller. The form sends what was typed as text; numbers are read
here so a typo comes back as a 422 naming the field, which the page shows beside it.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from chachaml.errors import InvalidInput, NotFound
from chachaml.server.errors import ApiError
from chachaml.server.ui.actions import _accept, _json
from chachaml.server.ui.common import store_of
from chachaml.store.server_state import is_server_store
from chachaml.tools import alerts as alert_ops
from chachaml.tools.alert_trial import send_test_alert
from chachaml.tools.webhooks import Delivery


class RuleForm(BaseModel):
    """A rule as the page's form sends it: text fields, blank meaning not given.

    Editing keeps the stored webhook URL and secret unless new ones are typed (the page never
    sees them) or ``remove_webhook`` is ticked.
    """

    model_config = ConfigDict(extra="forbid")
    mode: Literal["create", "edit"] = "create"
    name: str
    kind: Literal["threshold", "drop", "no_completed_run", "silent_run"]
    experiment: str = ""
    metric_key: str = ""
    op: str = ""
    threshold: str = ""
    drop_pct: str = ""
    baseline_model: str = ""
    baseline_runs: str = ""
    no_completed_run_hours: str = ""
    silent_minutes: str = ""
    cooldown_minutes: str = ""
    webhook_url: str = ""
    secret: str = ""
    remove_webhook: bool = False
    muted: bool = False


class RuleName(BaseModel):
    """One rule, by name."""

    model_config = ConfigDict(extra="forbid")
    name: str


class MuteIn(RuleName):
    """Mute (``true``) or unmute a rule."""

    muted: bool


NEEDED = {
    "threshold": ("metric_key", "op", "threshold"),
    "drop": ("metric_key", "drop_pct"),
    "no_completed_run": ("no_completed_run_hours",),
    "silent_run": ("silent_minutes",),
}
LABELS = {
    "metric_key": "a metric key",
    "op": "a comparison",
    "threshold": "a threshold value",
    "drop_pct": "a drop percentage",
    "no_completed_run_hours": "a window in hours",
    "silent_minutes": "a window in minutes",
}


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, message, [{"loc": ["body", field], "message": message}])


def _number(form: RuleForm, field: str) -> float | None:
    text = str(getattr(form, field)).strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _invalid(field, f"{field} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _invalid(field, f"{field} must be a finite number, got {text!r}")
    return value


def _integer(form: RuleForm, field: str) -> int | None:
    value = _number(form, field)
    if value is not None and not value.is_integer():
        raise _invalid(field, f"{field} must be a whole number, got {value:g}")
    return None if value is None else int(value)


def _text(value: str) -> str | None:
    return value.strip() or None


def _delivery(request: Request) -> Delivery:
    found: Delivery = request.app.state.delivery
    return found


async def _rule_args(request: Request, form: RuleForm) -> tuple[str | None, str | None]:
    """The webhook URL and secret the rule will have: typed, kept from the stored rule, or none."""
    url, secret = _text(form.webhook_url), form.secret or None
    if form.remove_webhook or form.mode == "create" or url is not None:
        return (None, None) if form.remove_webhook else (url, secret)
    store = store_of(request)
    if not is_server_store(store):
        return url, secret
    stored = await store.get_alert(form.name.strip())
    return stored.webhook_url, secret if secret is not None else stored.secret


async def save_rule(request: Request) -> Response:
    """Create a rule (refused if the name is taken) or replace one's definition."""
    user, form = await _accept(request, RuleForm)
    store = store_of(request)
    name = form.name.strip()
    if not name:
        raise _invalid("name", "give the rule a name")
    exists = True
    try:
        await alert_ops.get_alert(store, name)
    except NotFound:
        exists = False
    if form.mode == "create" and exists:
        raise _invalid("name", f"a rule named {name!r} exists; edit it, or pick another name")
    if form.mode == "edit" and not exists:
        raise _invalid("name", f"no rule named {name!r} to edit (deleted meanwhile?)")
    kind = form.kind
    for field in NEEDED[kind]:
        if not str(getattr(form, field)).strip():
            raise _invalid(field, f"a {kind} rule needs {LABELS.get(field, field)}")
    webhook_url, secret = await _rule_args(request, form)
    cooldown = _number(form, "cooldown_minutes")
    try:
        rule = alert_ops.build_rule(
            name,
            user,
            metric_key=_text(form.metric_key) if kind in ("threshold", "drop") else None,
            op=_text(form.op) if kind == "threshold" else None,
            threshold=_number(form, "threshold") if kind == "threshold" else None,
            drop_pct=_number(form, "drop_pct") if kind == "drop" else None,
            baseline_model=_text(form.baseline_model) if kind == "drop" else None,
            baseline_runs=_integer(form, "baseline_runs") if kind == "drop" else None,
            no_completed_run_hours=(
                _number(form, "no_completed_run_hours") if kind == "no_completed_run" else None
            ),
            silent_minutes=_number(form, "silent_minutes") if kind == "silent_run" else None,
            experiment=_text(form.experiment),
            webhook_url=webhook_url,
            secret=secret,
            cooldown_minutes=0.0 if cooldown is None else cooldown,
            muted=form.muted,
        )
        saved = await alert_ops.set_alert(
            store, rule, allow_private=_delivery(request).allow_private
        )
    except InvalidInput as exc:
        raise ApiError(422, str(exc)) from None
    return _json({"alert": saved.model_dump(mode="json"), "created": not exists})


async def mute_rule(request: Request) -> Response:
    """Mute or unmute a rule; a muted rule is kept but fires nothing."""
    _, body = await _accept(request, MuteIn)
    saved = await alert_ops.mute_alert(store_of(request), body.name, body.muted)
    return _json({"alert": saved.model_dump(mode="json")})


async def delete_rule(request: Request) -> Response:
    """Delete a rule and its history (the page asks first)."""
    _, body = await _accept(request, RuleName)
    await alert_ops.delete_alert(store_of(request), body.name)
    return _json({"deleted": body.name})


async def test_rule(request: Request) -> Response:
    """Send the rule's webhook a marked test event now; answers with each attempt."""
    _, body = await _accept(request, RuleName)
    result = await send_test_alert(store_of(request), body.name, _delivery(request))
    return _json(result.model_dump(mode="json", exclude={"payload"}))


def routes() -> list[Route]:
    """The Alerts page's write endpoints (POST only; the rule's name is in the body)."""
    return [
        Route("/alerts/rules", save_rule, methods=["POST"]),
        Route("/alerts/rules/mute", mute_rule, methods=["POST"]),
        Route("/alerts/rules/delete", delete_rule, methods=["POST"]),
        Route("/alerts/rules/test", test_rule, methods=["POST"]),
    ]
