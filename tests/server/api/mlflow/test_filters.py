"""MLflow's filter grammar: what each condition reads as, what SQL answers, what is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chachaml.errors import InvalidInput
from chachaml.records.runs import MetricCondition, RunInfo
from chachaml.server.api.mlflow.entities import FIELD_TAGS
from chachaml.server.api.mlflow.filters import (
    Clause,
    Order,
    matches,
    parse_filter,
    parse_order,
    plan,
)


def run(**given: object) -> RunInfo:
    fields: dict[str, object] = {
        "id": "a" * 32,
        "experiment": "mnist",
        "name": "wider",
        "status": "completed",
        "created_by": "ana",
        "started_at": datetime(2025, 2, 10, tzinfo=UTC),
        "tags": {"team": "vision"},
        "metrics": {"acc": 0.92, "loss": None},
    }
    return RunInfo.model_validate(fields | given)


def test_conditions_of_every_kind_are_read_with_their_spellings() -> None:
    text = (
        "metrics.acc > 0.9 and params.lr = '0.01' AND tags.\"mlflow.user\" = 'ana'"
        " AND attribute.status = 'FINISHED' AND metric.`val loss` <= 1e-3"
    )
    assert parse_filter(text) == [
        Clause("metric", "acc", ">", 0.9),
        Clause("param", "lr", "=", "0.01"),
        Clause("tag", "mlflow.user", "=", "ana"),
        Clause("attribute", "status", "=", "FINISHED"),
        Clause("metric", "val loss", "<=", 0.001),
    ]


def test_like_in_and_null_conditions_are_read() -> None:
    text = (
        "attributes.run_name ILIKE '%wide%' AND attributes.run_id IN ('a', 'b')"
        " AND tags.team IS NOT NULL AND params.seed IS NULL AND run.`Run name` NOT IN ('x')"
    )
    assert parse_filter(text) == [
        Clause("attribute", "run_name", "ILIKE", "%wide%"),
        Clause("attribute", "run_id", "IN", ("a", "b")),
        Clause("tag", "team", "IS NOT NULL", None),
        Clause("param", "seed", "IS NULL", None),
        Clause("attribute", "run_name", "NOT IN", ("x",)),
    ]


def test_an_empty_filter_matches_everything() -> None:
    assert parse_filter(None) == []
    assert parse_filter("  ") == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("metrics.acc > 'high'", "compares with a number"),
        ("params.lr > '0.1'", "does not apply to param"),
        ("metrics.acc > 0.9 OR metrics.acc < 0.1", "AND only"),
        ("colour.red = 'x'", "unknown key type"),
        ("attributes.colour = 'x'", "unknown attribute"),
        ("metrics.acc >", "the filter ended"),
        ("metrics.acc > 0.9 metrics.loss < 1", "expected AND"),
        ("attributes.status = 'DONE'", "unknown status"),
        ("tags.team = 'a' ; drop", "unexpected ';'"),
        ("attributes.run_id IN 'a'", "list in parentheses"),
    ],
)
def test_a_mistake_names_where_reading_stopped(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match="at character") as caught:
        parse_filter(text)
    assert says in str(caught.value)


def test_order_by_reads_a_key_and_a_direction() -> None:
    assert parse_order("metrics.acc DESC") == Order("metric", "acc", False)
    assert parse_order("attributes.start_time") == Order("attribute", "start_time", True)
    assert parse_order("params.`learning rate` asc") == Order("param", "learning rate", True)
    with pytest.raises(InvalidInput, match="expected ASC or DESC"):
        parse_order("metrics.acc sideways")


def test_sql_answers_thresholds_equalities_and_start_times_and_the_rest_is_checked_per_run() -> (
    None
):
    clauses = parse_filter(
        "metrics.acc >= 0.9 AND metrics.loss != 1 AND tags.team = 'vision'"
        " AND tags.`mlflow.runName` = 'wider' AND attributes.status = 'FINISHED'"
        " AND attributes.user_id = 'ana' AND params.lr = '0.01' AND params.opt LIKE 'ad%'"
        " AND attributes.start_time >= 1000 AND attributes.end_time > 5"
    )
    done = plan(clauses, FIELD_TAGS)
    assert done.metric_conditions == [MetricCondition(key="acc", op=">=", value=0.9)]
    assert done.tags == {"team": "vision"}
    assert done.param_texts == {"lr": "0.01"}
    assert (done.status, done.created_by) == ("completed", "ana")
    assert done.names == frozenset({"wider"})  # the name tag is the run's name, a column
    assert done.since == 0.9995  # a start of 999.5 ms shows as 1000
    assert [c.key for c in done.rest] == ["loss", "opt", "end_time"]
    assert not done.impossible


def test_start_time_bounds_follow_millisecond_rounding() -> None:
    def window(text: str) -> tuple[float | None, float | None, bool]:
        done = plan(parse_filter(text), FIELD_TAGS)
        return done.since, done.until, done.impossible

    assert window("attributes.start_time > 1000") == (1.0005, None, False)
    assert window("attributes.start_time < 1000") == (None, 0.9995, False)
    assert window("attributes.start_time = 1000") == (0.9995, 1.0005, False)
    assert window("attributes.start_time <= 1000 AND attributes.start_time >= 2000")[2]
    assert window("attributes.start_time < 0")[2]
    assert window("attributes.start_time > -5") == (0.0, None, False)


def test_contradicting_equalities_match_nothing_without_a_query() -> None:
    assert plan(parse_filter("tags.a = 'x' AND tags.a = 'y'"), FIELD_TAGS).impossible
    assert plan(parse_filter("params.a = 'x' AND params.a = 'y'"), FIELD_TAGS).impossible
    assert plan(parse_filter("attributes.status = 'SCHEDULED'"), FIELD_TAGS).impossible


def test_runs_are_checked_with_mlflows_semantics() -> None:
    r = run()
    params = {"lr": 0.01, "flag": True}
    assert matches(r, params, parse_filter("params.lr = '0.01' AND params.flag = 'True'"))
    assert matches(r, params, parse_filter("tags.`mlflow.runName` LIKE 'wid%'"))
    assert not matches(r, params, parse_filter("tags.`mlflow.runName` LIKE 'WID%'"))
    assert matches(r, params, parse_filter("attributes.run_name ILIKE 'WID%'"))
    assert matches(r, params, parse_filter("tags.missing IS NULL AND tags.team IS NOT NULL"))
    assert not matches(r, params, parse_filter("params.missing != 'x'"))  # absent fails
    assert not matches(r, params, parse_filter("metrics.loss < 10"))  # NaN fails
    assert matches(r, params, parse_filter("attributes.start_time >= 1739145600000"))
    assert matches(r, params, parse_filter(f"attributes.run_id IN ('{'a' * 32}', 'b')"))
    assert matches(r, params, parse_filter("attributes.status != 'RUNNING'"))
