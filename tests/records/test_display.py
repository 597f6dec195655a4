"""Records in a notebook: ``_repr_html_`` shows what matters, escaped; reprs stay short.

Every record comes from a real SQLite store written by the tracking client, the registry and a
pipeline (:mod:`tests.support.display_seed`); :mod:`tests.e2e.test_notebook_browser` renders the
HTML in Debian's Chromium.
"""

from __future__ import annotations

import json
import math
import pickle
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from chachaml.client.pipelines.pipeline import pipeline, pipelines
from chachaml.records import display
from chachaml.records.pipelines import PipelineDetail
from chachaml.records.registry import ModelDetail, VersionDiff
from chachaml.records.runs import Comparison, MetricSeries, Run, RunInfo, Runs
from tests.support.display_seed import EVIL, Seeded, seeded_display

ESCAPED = "&lt;script&gt;window.pwned = 1&lt;/script&gt;"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    with seeded_display(tmp_path_factory.mktemp("display")) as records:
        yield records


def _run_infos(n: int, metrics: int = 2) -> Runs:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Runs(
        RunInfo(
            id=f"{i:032x}",
            experiment="exp",
            name=f"run-{i}",
            status="completed",
            created_by="ana",
            started_at=start,
            ended_at=start + timedelta(seconds=90),
            metrics={f"m{k:02d}": i + k / 10 for k in range(metrics)},
        )
        for i in range(n)
    )


def _escapes(html: str) -> None:
    assert "<script" not in html
    assert ESCAPED in html


def _polyline_points(html: str) -> list[tuple[float, float]]:
    (points,) = re.findall(r'<polyline[^>]* points="([^"]*)"', html)
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


# runs


def test_a_run_shows_its_metrics_params_tags_note_dataset_and_artifact(seeded: Seeded) -> None:
    run = seeded.client.get_run(seeded.good)
    html = run._repr_html_()
    _escapes(html)
    for shown in ("mnist", run.id, "completed", "tester", "accuracy", "0.9075", "lr", "0.1"):
        assert shown in html
    assert "depth" in html and "60000" in html and "model" in html and "# Notes" in html
    assert html.count(ESCAPED) == 5  # the name (title), a param, a tag, the note, a dataset


def test_a_failed_run_shows_its_error_as_text(seeded: Seeded) -> None:
    run = seeded.client.get_run(seeded.failed)
    html = run._repr_html_()
    assert "failed" in html and "error" in html
    _escapes(html)
    info = seeded.client.runs(experiment="mnist", status="failed")[0]
    assert info.id == run.id and ESCAPED in info._repr_html_()


def test_a_run_repr_is_one_short_line_with_id_where_status_and_metrics(seeded: Seeded) -> None:
    run = seeded.client.get_run(seeded.good)
    text = repr(run)
    assert text.startswith(f"Run({run.id[:12]} mnist/") and "completed" in text
    assert "accuracy=0.9075" in text and "loss=0.1" in text
    long = run.model_copy(update={"name": "n" * 500 + "\nsecond line", "experiment": "e" * 300})
    assert len(repr(long)) <= 120 and "\n" not in repr(long)
    info = seeded.client.runs(experiment="mnist")[0]
    assert repr(info).startswith("RunInfo(") and len(repr(info)) <= 120


def test_str_equality_and_serialisation_are_pydantics_as_before(seeded: Seeded) -> None:
    run = seeded.client.get_run(seeded.good)
    assert f"id='{run.id}'" in str(run) and "params={" in str(run)
    assert Run.model_validate_json(run.model_dump_json()) == run
    assert run.model_copy() == run and run != run.model_copy(update={"note": None})
    with pytest.raises(ValidationError):
        run.name = "renamed"  # frozen: the assignment must be refused


# run lists


def test_runs_is_a_list_to_every_caller(seeded: Seeded) -> None:
    plain = seeded.client.runs(experiment="mnist")
    runs = Runs(plain)
    assert isinstance(runs, list) and runs == plain and plain == runs and len(runs) == 3
    assert [r.id for r in runs] == [r.id for r in plain] and runs[0] is plain[0]
    assert isinstance(runs[:2], Runs) and runs[:2] == plain[:2] and runs[-1] == plain[-1]
    adapter = TypeAdapter(list[RunInfo])
    assert adapter.dump_json(runs) == adapter.dump_json(plain)
    assert adapter.validate_python(runs) == plain
    dumped = [r.model_dump(mode="json") for r in runs]
    assert json.loads(json.dumps(dumped)) == [r.model_dump(mode="json") for r in plain]
    assert pickle.loads(pickle.dumps(runs)) == runs and Runs() == []

    class Holder(BaseModel):
        runs: list[RunInfo]

    assert Holder(runs=runs).model_dump_json() == Holder(runs=plain).model_dump_json()


def test_runs_table_has_a_row_per_run_with_status_duration_and_latest_metrics(
    seeded: Seeded,
) -> None:
    runs = Runs(seeded.client.runs(experiment="mnist"))
    html = runs._repr_html_()
    _escapes(html)
    assert html.count("<tr>") == 1 + 3  # header + one row per run
    for run in runs:
        assert run.id[:12] in html and run.id not in html
    assert "3 runs in 1 experiment" in html and "failed" in html and "0.93" in html
    assert "accuracy" in html and "loss" in html and "duration" in html


def test_runs_table_shows_eight_metrics_and_fifty_rows_then_says_how_many_more() -> None:
    runs = _run_infos(60, metrics=12)
    html = runs._repr_html_()
    assert html.count("<tr>") == 1 + 50 + 1
    assert "10 more (60 in all)" in html and "8 of 12 metrics shown" in html
    assert "m07" in html and "m08" not in html and "1m30s" in html


def test_runs_repr_shows_the_first_five_and_the_count() -> None:
    text = repr(_run_infos(12))
    lines = text.splitlines()
    assert lines[0] == "Runs([" and lines[-1] == "])" and len(lines) == 1 + 5 + 1 + 1
    assert "7 more (12 runs)" in text and all(len(line) <= 120 for line in lines)
    assert repr(Runs()) == "Runs([])" and repr(_run_infos(2)).count("RunInfo(") == 2


# comparisons, metric series, best runs, experiments


def test_a_comparison_puts_differing_params_first_and_every_metric_in_a_column_per_run(
    seeded: Seeded,
) -> None:
    comparison = seeded.client.compare_runs([seeded.good, seeded.other])
    html = comparison._repr_html_()
    _escapes(html)
    assert html.index("depth ≠") < html.index("lr ≠") < html.index(">optimizer<")
    assert "0.9075" in html and "0.93" in html and "0.01" in html
    assert "2 runs compared: 2 of 3 params differ" in html
    text = repr(comparison)
    assert text.startswith("Comparison(2 runs") and "differing: depth, lr" in text
    assert Comparison.model_validate_json(comparison.model_dump_json()) == comparison


def test_a_metric_series_draws_a_sparkline_of_its_finite_points(seeded: Seeded) -> None:
    series = seeded.client.metric_history(seeded.good, "loss")
    assert len(series.values) == 6 and series.values[2] is None  # stored NaN reads as None
    html = series._repr_html_()
    points = _polyline_points(html)
    assert len(points) == 5 and "<circle" in html
    assert points[0][1] < points[-1][1]  # loss falls: the first point is drawn higher
    assert "6 points" not in html and ">6<" in html and "0.1" in html
    assert repr(series) == f"MetricSeries({seeded.good[:12]} loss 6 points last=0.1)"
    assert MetricSeries.model_validate_json(series.model_dump_json()) == series


def test_a_sparkline_skips_nan_none_and_inf_and_still_draws_one_point() -> None:
    mixed = display.sparkline([0, 1, 2, 3, 4], [1.0, math.nan, None, math.inf, 2.0])
    assert len(_polyline_points(mixed)) == 2 and "2 points" in mixed
    single = display.sparkline([7], [0.5])
    assert len(_polyline_points(single)) == 1 and "<circle" in single
    assert "<svg" not in display.sparkline([], []) and "no finite values" in display.sparkline(
        [0, 1], [math.nan, -math.inf]
    )
    with pytest.raises(ValueError, match="3 steps but 2 values"):
        display.sparkline([0, 1, 2], [1.0, 2.0])
    flat = _polyline_points(display.sparkline([0, 1, 2], [3.0, 3.0, 3.0], height=24))
    assert {y for _, y in flat} == {12.0}


def test_a_long_sparkline_is_thinned_but_keeps_its_extremes_and_last_point() -> None:
    n = 100_000
    values = [math.sin(i / 1000) for i in range(n)]
    values[31_337] = 50.0
    html = display.sparkline(range(n), values, width=120, height=24)
    points = _polyline_points(html)
    assert len(points) <= display.SPARK_POINTS and min(y for _, y in points) == 2.0
    assert points[-1][0] == 118.0 and f"{n} points" in html and len(html) < 10_000


def test_a_best_run_names_the_metric_value_and_the_run(seeded: Seeded) -> None:
    best = seeded.client.best_run("accuracy")
    assert best is not None and best.run.id == seeded.other
    html = best._repr_html_()
    assert "accuracy" in html and "0.93" in html and "maximum" in html and "wider" in html
    assert repr(best).startswith("BestRun(accuracy=0.93 (max, step 0)")


def test_an_experiment_shows_its_runs_and_activity(seeded: Seeded) -> None:
    (experiment,) = [e for e in seeded.client.experiments() if e.name == "mnist"]
    assert "runs" in experiment._repr_html_() and ">3<" in experiment._repr_html_()
    assert repr(experiment) == "Experiment(mnist runs=3)"


# models and pipelines


def test_a_model_and_its_detail_show_versions_stages_aliases_and_history(seeded: Seeded) -> None:
    (model,) = seeded.registry.models()
    assert "v2" in model._repr_html_() and "champion=v2" in model._repr_html_()
    assert repr(model) == "Model(digits 2 versions production=v2 champion=v2)"
    detail = seeded.registry.model("digits")
    html = detail._repr_html_()
    _escapes(html)
    assert html.count("<tr>") >= 1 + 2 and "production" in html and "history" in html
    assert seeded.good[:12] in html and seeded.other[:12] in html
    assert ModelDetail.model_validate_json(detail.model_dump_json()) == detail


def test_a_model_version_shows_its_run_artifact_stage_and_metrics(seeded: Seeded) -> None:
    version = seeded.registry.model_version("digits", 1)
    html = version._repr_html_()
    _escapes(html)
    assert seeded.good in html and "0.9075" in html and "json" in html and "none" in html
    assert repr(version).startswith(f"ModelVersion(digits v1 none run={seeded.good[:12]}")


def test_a_version_diff_shows_changed_params_and_metric_deltas(seeded: Seeded) -> None:
    diff = seeded.registry.diff_versions("digits", 1, 2)
    html = diff._repr_html_()
    assert "v1 → v2" in html and "depth" in html and "0.0225" in html
    assert "lr" in html and "0.01" in html and "optimizer" not in html
    assert repr(diff) == "VersionDiff(digits v1->v2 2 params differ 2 metrics artifact changed)"
    assert VersionDiff.model_validate_json(diff.model_dump_json()) == diff


def test_a_pipeline_shows_each_step_status_and_the_error_as_text(seeded: Seeded) -> None:
    info = pipelines(client=seeded.client)[0]
    assert "etl" in info._repr_html_() and "1 completed 1 failed" in info._repr_html_()
    assert repr(info).startswith(f"PipelineInfo({info.id[:12]} etl failed steps:")
    detail = pipeline(seeded.pipeline_id, client=seeded.client)
    html = detail._repr_html_()
    _escapes(html)
    assert html.count("<tr>") >= 1 + 2 and "load" in html and "train" in html
    assert PipelineDetail.model_validate_json(detail.model_dump_json()) == detail
    assert all(len(repr(s)) <= 120 for s in detail.steps)


# helpers


def test_numbers_durations_and_sizes_read_like_the_cli() -> None:
    assert [display.num(v) for v in (0.90754, 3, None, math.inf, 1e-7)] == [
        "0.9075",
        "3",
        "",
        "inf",
        "1e-07",
    ]
    got = [display.duration(s) for s in (0.25, 12.34, 245, 7380, 200_000, None)]
    assert got == ["250ms", "12.3s", "4m05s", "2h03m", "2d07h", ""]
    assert [display.size(n) for n in (812, 4200, 1_300_000)] == ["812 B", "4.2 kB", "1.3 MB"]
    assert display.clip("a\nb\t c" + "x" * 50, 10) == "a b cxxxx…"


def test_every_table_cell_escapes_text_unless_it_is_html_built_here() -> None:
    html = display.table([EVIL], [[EVIL, display.Html("<b>ok</b>"), {"k": EVIL}, [EVIL]]])
    assert "<script" not in html and html.count(ESCAPED) == 4 and "<b>ok</b>" in html
