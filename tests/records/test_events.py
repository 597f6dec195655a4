"""Event records: each type's payload, the CloudEvents envelope, its schema and the filter."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonschema  # type: ignore[import-untyped]
import pytest

from chachaml.records.events import (
    EVENT_TYPES,
    Event,
    EventFilter,
    LatestPoint,
    MetricsLogged,
    ModelStageChanged,
    check_type_pattern,
    event_schema,
)


def as_event(data: MetricsLogged | ModelStageChanged, seq: int = 7) -> Event:
    """An event as the store builds one from its row."""
    return Event(id=str(seq), type=data.type, time=datetime(2026, 1, 2, tzinfo=UTC),
                 subject=data.subject(), data=data.model_dump(mode="json"), runid=data.run(),
                 model=data.model(), experiment="mnist")  # fmt: skip


def test_every_type_is_documented_and_has_a_subject_kind() -> None:
    assert len(EVENT_TYPES) == 20
    for name, kind in EVENT_TYPES.items():
        assert kind.type == name and kind.summary()
        assert name.split(".")[0] in {"run", "experiment", "model", "alert", "pipeline"}


def test_an_event_is_cloudevents_json_and_matches_its_published_schema() -> None:
    data = MetricsLogged(run_id="r1", metrics={"loss": LatestPoint(value=0.1, step=3)},
                         counts={"loss": 4})  # fmt: skip
    wire = as_event(data).model_dump(mode="json")
    assert {k: wire[k] for k in ("specversion", "id", "source", "type", "subject")} == {
        "specversion": "1.0", "id": "7", "source": "chachaml", "type": "run.metrics",
        "subject": "runs/r1",
    }  # fmt: skip
    assert wire["datacontenttype"] == "application/json" and wire["time"].startswith("2026-01-02")
    jsonschema.validate(wire, event_schema("run.metrics"))
    changed = as_event(ModelStageChanged(name="m", version=2, from_stage="staging",
                                         to_stage="production"))  # fmt: skip
    jsonschema.validate(changed.model_dump(mode="json"), event_schema("model.stage_changed"))
    with pytest.raises(jsonschema.ValidationError):  # the schema pins the type
        jsonschema.validate(wire, event_schema("run.ended"))


def test_a_filter_matches_type_patterns_and_what_the_event_is_about() -> None:
    metrics = as_event(MetricsLogged(run_id="r1", metrics={}, counts={}))
    stage = as_event(ModelStageChanged(name="m", version=1, from_stage=None, to_stage="staging"))
    assert EventFilter().matches(metrics)
    assert EventFilter(types=("run.*",)).matches(metrics)
    assert not EventFilter(types=("run.*",)).matches(stage)
    assert EventFilter(types=("run.ended", "model.*"), model="m").matches(stage)
    assert not EventFilter(run_id="r2").matches(metrics)
    assert EventFilter(experiment="mnist", run_id="r1").matches(metrics)


def test_type_patterns_must_name_some_type() -> None:
    assert check_type_pattern("run.*") is None
    assert check_type_pattern("*") is None
    assert "matches no event type" in (check_type_pattern("runs.*") or "")
    assert "may hold only" in (check_type_pattern("run;drop") or "")
