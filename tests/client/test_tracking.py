"""The tracking API: runs, params, metrics, tags, notes, datasets, queries, decorators."""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest

from chachaml.client.client import Client
from chachaml.client.experiments import ExperimentEdits
from chachaml.client.run import ActiveRun
from chachaml.client.stops import Stops
from chachaml.errors import Conflict, InvalidInput, NoActiveRun, NotFound
from chachaml.settings import Settings
from tests.conftest import make_settings
from tests.support.waiting import wait_for


@pytest.fixture
def store_url(tracking_store_url: str) -> str:
    """This module's ``client`` tests also run against a remote server."""
    return tracking_store_url


def test_run_context_completes_and_records_everything(client: Client) -> None:
    with client.run(experiment="mnist", name="baseline", tags={"team": "vision"}) as run:
        assert client.active_run() is run
        client.log_params({"lr": 0.01, "epochs": 3})
        for epoch in range(3):
            client.log_metric("loss", 1.0 / (epoch + 1))
        client.set_tag("stage", "dev")
    assert client.active_run() is None
    stored = client.get_run(run.id)
    assert stored.status == "completed"
    assert (stored.experiment, stored.name, stored.created_by) == ("mnist", "baseline", "tester")
    assert stored.params == {"lr": 0.01, "epochs": 3}
    assert stored.tags == {"team": "vision", "stage": "dev"}
    assert stored.metrics == {"loss": pytest.approx(1 / 3)}
    assert stored.metric_summaries["loss"].step == 2
    assert stored.ended_at is not None and stored.duration_seconds is not None
    assert stored.environment["python"]


def test_exception_inside_a_run_marks_it_failed_and_reraises(client: Client) -> None:
    with pytest.raises(ZeroDivisionError), client.run(experiment="e") as run:
        client.log_metric("x", 1.0)
        _ = 1 / 0
    stored = client.get_run(run.id)
    assert stored.status == "failed"
    assert stored.error is not None and "ZeroDivisionError: division by zero" in stored.error
    assert stored.metrics == {"x": 1.0}  # points logged before the failure are kept


def test_keyboard_interrupt_marks_the_run_killed(client: Client) -> None:
    with pytest.raises(KeyboardInterrupt), client.run(experiment="e") as run:
        raise KeyboardInterrupt
    assert client.get_run(run.id).status == "killed"


def test_nested_run_records_its_parent_and_restores_it(client: Client) -> None:
    with client.run(experiment="e", name="outer") as outer:
        with client.run(name="inner") as inner:
            assert client.active_run() is inner
        assert client.active_run() is outer
    stored = client.get_run(inner.id)
    assert stored.parent_id == outer.id
    assert stored.experiment == "e"  # inherited from the parent
    assert client.get_run(outer.id).children == [inner.id]


def test_start_and_end_run_without_a_context(client: Client) -> None:
    run = client.start_run(experiment="e", params={"a": 1})
    client.log_metric("m", 2.0)
    client.end_run()
    assert client.get_run(run.id).status == "completed"
    with pytest.raises(NoActiveRun, match="no active run"):
        client.end_run()
    with pytest.raises(NoActiveRun):
        client.log_metric("m", 1.0)


def test_logging_to_an_ended_run_object_is_an_error(client: Client) -> None:
    with client.run(experiment="e") as run:
        run.log_metric("m", 1.0)
    with pytest.raises(NoActiveRun, match="has ended"):
        run.log_metric("m", 2.0)
    with pytest.raises(NoActiveRun, match="has ended"):
        run.log_metric("new", 2.0)


def test_current_run_is_per_thread(client: Client) -> None:
    seen: list[object] = []
    with client.run(experiment="e"):
        worker = threading.Thread(target=lambda: seen.append(client.active_run()))
        worker.start()
        worker.join()
    assert seen == [None]


def test_astart_run_takes_start_runs_arguments_and_names_a_parent(client: Client) -> None:
    sync, twin = inspect.signature(client.start_run), inspect.signature(client.astart_run)
    assert list(twin.parameters.items()) == list(sync.parameters.items())
    with client.run(experiment="twins", name="parent") as parent:
        pass

    async def main() -> tuple[str | None, str, str | None]:
        run = await client.astart_run(name="child", parent=parent.id, on_stop=print)
        current = client.active_run()
        run.end()
        return run.parent_id, run.experiment, current.name if current else None

    parent_id, experiment, current = anyio.run(main)
    assert (parent_id, experiment) == (parent.id, "default")  # a parent by id: no experiment
    assert current == "child"  # current in the task that started it


def test_open_runs_lists_the_runs_going_in_this_process(client: Client) -> None:
    assert client.open_runs() == []
    with client.run(experiment="open", name="outer") as outer:
        with client.run(name="inner") as inner:
            assert {r.id for r in client.open_runs()} == {outer.id, inner.id}
        assert client.open_runs() == [outer]
    assert client.open_runs() == []


def test_current_run_is_per_async_task(client: Client) -> None:
    ids: dict[str, str] = {}

    inside: list[str] = []

    async def job(name: str, all_inside: anyio.Event) -> None:
        async with client.arun(experiment="async", name=name) as run:
            inside.append(name)
            if len(inside) == 3:
                all_inside.set()
            with anyio.fail_after(10):
                await all_inside.wait()  # the three runs are open at the same time
            active = client.active_run()
            assert active is run
            run.log_metric("m", 1.0)
            ids[name] = run.id

    async def main() -> None:
        all_inside = anyio.Event()
        async with anyio.create_task_group() as tg:
            for name in ("a", "b", "c"):
                tg.start_soon(job, name, all_inside)

    anyio.run(main)
    runs = {r.name: r for r in client.runs(experiment="async")}
    assert set(runs) == {"a", "b", "c"}
    assert all(r.parent_id is None and r.status == "completed" for r in runs.values())


def test_changing_a_param_is_a_clear_error(client: Client) -> None:
    with client.run(experiment="e") as run:
        client.log_param("lr", 0.1)
        client.log_param("lr", 0.1)
        with pytest.raises(Conflict, match=r"param 'lr'.*immutable"):
            client.log_param("lr", 0.2)
    assert client.get_run(run.id).params == {"lr": 0.1}


def test_metric_steps_default_per_key_and_explicit_steps_win(client: Client) -> None:
    with client.run(experiment="e") as run:
        client.log_metric("a", 1.0)
        client.log_metric("a", 2.0)
        client.log_metrics({"a": 3.0, "b": 4.0}, step=10)
        client.log_metric("a", 5.0)
    history = client.metric_history(run.id, "a")
    assert history.steps == [0, 1, 10, 11]
    assert history.values == [1.0, 2.0, 3.0, 5.0]
    assert client.metric_history(run.id, "b").steps == [10]


def test_nan_and_inf_metrics_are_stored_as_documented(client: Client) -> None:
    with client.run(experiment="e") as run:
        client.log_metric("loss", 1.0)
        client.log_metric("loss", math.inf)
        client.log_metric("loss", math.nan)
        client.log_metric("acc", math.nan)
    stored = client.get_run(run.id)
    assert stored.metrics == {"loss": None, "acc": None}  # latest value NaN reads as None
    assert stored.metric_summaries["loss"].max == 1.0  # min/max are over finite values
    assert client.metric_history(run.id, "loss").values == [1.0, math.inf, None]
    assert client.best_run("acc", experiment="e") is None  # NaN is never best


@pytest.mark.parametrize("bad", ["0.5", None, True, object()])
def test_non_numeric_metric_values_are_refused(client: Client, bad: object) -> None:
    with client.run(experiment="e"), pytest.raises(InvalidInput, match="must be a number"):
        client.log_metric("m", bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [-1, 1.5, "3"])
def test_bad_steps_and_keys_are_refused(client: Client, step: object) -> None:
    with client.run(experiment="e"):
        with pytest.raises(InvalidInput, match="step"):
            client.log_metric("m", 1.0, step=step)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="metric key"):
            client.log_metric("", 1.0)


def test_numpy_scalars_are_accepted_as_values_and_steps(client: Client) -> None:
    np: Any = importlib.import_module("numpy")  # a test dependency: missing fails, no skip

    with client.run(experiment="e") as run:
        client.log_metric("m", np.float32(0.5), step=np.int64(3))
        client.log_param("n", np.int64(7))
    stored = client.get_run(run.id)
    assert stored.metrics == {"m": 0.5} and stored.params == {"n": 7}


def test_tags_and_notes_can_be_set_after_a_run_ended(client: Client) -> None:
    with client.run(experiment="e") as run:
        pass
    assert client.set_run_tag(run.id, "reviewed", "yes") == {"reviewed": "yes"}
    client.set_note(run.id, "## Result\n$e^{i\\pi} + 1 = 0$")
    stored = client.get_run(run.id)
    assert stored.note == "## Result\n$e^{i\\pi} + 1 = 0$"
    with pytest.raises(NotFound, match="missing-run"):
        client.set_run_tag("missing-run", "k", "v")
    with pytest.raises(NotFound, match="missing-run"):
        client.set_note("missing-run", "x")


def test_datasets_record_shape_from_data(client: Client) -> None:
    np: Any = importlib.import_module("numpy")  # a test dependency: missing fails, no skip

    with client.run(experiment="e") as run:
        client.log_dataset("train", data=np.zeros((100, 4)), name="blobs", source="s3://x")
        client.log_dataset("eval", n_rows=20, features=["a", "b"], digest="abc", split_seed=7)
    train, evaluation = client.get_run(run.id).datasets
    assert (train.role, train.n_rows, train.n_cols, train.source) == ("train", 100, 4, "s3://x")
    assert (evaluation.n_rows, evaluation.n_cols, evaluation.features) == (20, 2, ["a", "b"])
    assert evaluation.extra == {"split_seed": 7}
    with client.run(experiment="e"), pytest.raises(InvalidInput, match="n_rows"):
        client.log_dataset("train", n_rows=-1)


def test_unknown_run_id_is_a_clear_error(client: Client) -> None:
    with pytest.raises(NotFound, match="'deadbeef' not found"):
        client.get_run("deadbeef")
    with pytest.raises(InvalidInput, match="run_id"):
        client.get_run("")


def test_queries_filter_and_order(client: Client) -> None:
    accuracies = {"a": 0.7, "b": 0.95, "c": 0.9}
    for name, acc in accuracies.items():
        with client.run(experiment="q", name=name):
            client.log_metric("acc", acc / 2)
            client.log_metric("acc", acc)  # latest value counts
    with client.run(experiment="other", name="never-logged-acc"):
        client.log_metric("loss", 0.1)
    assert [r.name for r in client.runs(experiment="q")] == ["c", "b", "a"]
    assert client.runs(experiment="q", limit=1)[0].name == "c"
    assert client.last_run() is not None and client.last_run().name == "never-logged-acc"  # type: ignore[union-attr]
    found = client.search_runs("acc", ">=", 0.9, experiment="q")
    assert [r.name for r in found] == ["b", "c"]
    assert [r.name for r in client.search_runs("acc", "<", 0.9)] == ["a"]
    assert [r.name for r in client.search_runs("acc", "=", 0.9)] == ["c"]
    best = client.best_run("acc")
    assert best is not None and (best.run.name, best.value, best.step) == ("b", 0.95, 1)
    worst = client.best_run("acc", direction="min")
    assert worst is not None and worst.run.name == "a"
    assert client.best_run("acc", experiment="other") is None
    with pytest.raises(InvalidInput, match="op must be one of"):
        client.search_runs("acc", "!=", 0.5)
    with pytest.raises(InvalidInput, match="give all three"):
        client.search_runs("acc", ">")
    with pytest.raises(InvalidInput, match="direction"):
        client.best_run("acc", direction="up")  # type: ignore[arg-type]


def test_time_windows_accept_iso_dates_and_datetimes(client: Client) -> None:
    with client.run(experiment="t"):
        client.log_metric("acc", 0.5)
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert len(client.runs(since=today.isoformat(), until=tomorrow)) == 1
    assert client.runs(until=today.isoformat()) == []
    best = client.best_run("acc", since=f"{today.isoformat()}T00:00:00Z")
    assert best is not None
    with pytest.raises(InvalidInput, match="ISO date"):
        client.runs(since="last tuesday")
    with pytest.raises(InvalidInput, match="before until"):
        client.runs(since=tomorrow, until=today.isoformat())


def test_compare_runs_shows_param_differences_and_metrics(client: Client) -> None:
    ids = []
    for lr in (0.1, 0.2):
        with client.run(experiment="c", params={"lr": lr, "opt": "adam"}) as run:
            client.log_metric("acc", lr * 4)
        ids.append(run.id)
    comparison = client.compare_runs(ids)
    assert comparison.differing_params == ["lr"]
    assert comparison.params["opt"] == {ids[0]: "adam", ids[1]: "adam"}
    assert comparison.metrics["acc"] == {ids[0]: 0.4, ids[1]: 0.8}
    with pytest.raises(InvalidInput, match="at least 2"):
        client.compare_runs(ids[:1])
    with pytest.raises(NotFound):
        client.compare_runs([ids[0], "missing"])


def test_export_runs_is_flat_and_complete(client: Client) -> None:
    for i in range(150):
        with client.run(experiment="x", params={"i": i}, tags={"k": "v"}):
            client.log_metric("m", float(i))
    records = client.export_runs(experiment="x")
    assert len(records) == 150  # not truncated
    first = next(r for r in records if r["params.i"] == 0)
    assert first["metrics.m"] == 0.0 and first["tags.k"] == "v" and first["status"] == "completed"


def test_experiments_exist_once_a_run_names_them(client: Client) -> None:
    client.create_experiment("made", description="by hand", owner="alice")
    with client.run(experiment="implicit"):
        pass
    exps = {e.name: e for e in client.experiments()}
    assert exps["made"].description == "by hand" and exps["made"].run_count == 0
    assert exps["implicit"].run_count == 1
    with pytest.raises(InvalidInput, match="experiment name"):
        client.create_experiment("  ")


def test_experiments_are_renamed_archived_restored_and_tagged(client: Client) -> None:
    edits = ExperimentEdits(client)
    with client.run(experiment="draft"):
        pass
    edits.set_experiment_tag("draft", "team", "vision")
    edits.set_experiment_tag("draft", "size", 3)  # stored as text
    edits.delete_experiment_tag("draft", "size")
    edits.rename_experiment("draft", "final")
    assert client.get_run(client.runs(experiment="final")[0].id).experiment == "final"
    edits.archive_experiment("final")
    assert "final" not in {e.name for e in client.experiments()}
    assert client.runs(experiment="final") == []
    edits.restore_experiment("final")
    (exp,) = [e for e in client.experiments() if e.name == "final"]
    assert (exp.tags, exp.run_count) == ({"team": "vision"}, 1)
    client.create_experiment("other")
    with pytest.raises(Conflict, match="already exists"):
        edits.rename_experiment("final", "other")
    with pytest.raises(NotFound):
        edits.rename_experiment("nope", "x")
    with pytest.raises(NotFound, match="no tag 'size'"):
        edits.delete_experiment_tag("final", "size")
    with pytest.raises(InvalidInput, match="keeps its name"):
        edits.rename_experiment("default", "x")


def test_tracked_turns_calls_into_runs(client: Client) -> None:
    @client.tracked
    def train(lr: float, data: list[int]) -> float:
        client.log_metric("loss", lr)
        return lr * 2

    @client.tracked(experiment="deco", name="custom")
    def failing() -> None:
        raise ValueError("bad data")

    assert train(0.5, [1, 2]) == 1.0
    with pytest.raises(ValueError, match="bad data"):
        failing()
    runs = {r.name: r for r in client.runs(limit=None)}
    assert runs["train"].status == "completed" and runs["train"].metrics == {"loss": 0.5}
    assert client.get_run(runs["train"].id).params == {"lr": 0.5}  # scalars only
    assert runs["custom"].experiment == "deco" and runs["custom"].status == "failed"


def test_tracked_works_on_async_functions(client: Client) -> None:
    @client.tracked(experiment="async-deco")
    async def evaluate(k: int) -> int:
        await anyio.sleep(0)
        client.log_metric("k", float(k))
        return k + 1

    assert anyio.run(evaluate, 41) == 42
    (run,) = client.runs(experiment="async-deco")
    assert (run.name, run.status, run.metrics) == ("evaluate", "completed", {"k": 41.0})


def test_batched_metrics_and_flush_make_points_durable(client: Client) -> None:
    with client.run(experiment="e") as run:
        with client.batched_metrics():
            for i in range(1000):
                client.log_metric("m", float(i))
        assert client.get_run(run.id).metric_summaries["m"].count == 1000
        client.log_metric("m", 1000.0)
        client.flush()
        assert client.get_run(run.id).metric_summaries["m"].count == 1001


def test_points_from_many_threads_are_all_stored(client: Client) -> None:
    with client.run(experiment="threads") as run:

        def worker(t: int) -> None:
            for i in range(5000):
                run.log_metric(f"t{t}", float(i), step=i)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    summaries = client.get_run(run.id).metric_summaries
    assert {k: s.count for k, s in summaries.items()} == {f"t{t}": 5000 for t in range(4)}


def test_backpressure_keeps_the_buffer_bounded_and_loses_nothing(tmp_path: Path) -> None:
    settings = make_settings(flush_points=100, max_pending_points=300)
    client = Client(f"sqlite:///{tmp_path / 'bp.db'}", str(tmp_path / "a"), settings=settings)
    try:
        with client.run(experiment="bp") as run:
            for i in range(20_000):
                client.log_metric("m", float(i))
                assert run._pending <= 100  # never more than a flush's worth is unpacked
        assert client.get_run(run.id).metric_summaries["m"].count == 20_000
    finally:
        client.close()


def test_a_take_paused_mid_buffer_leaves_each_point_to_one_taker(tmp_path: Path) -> None:
    # The logging thread packing a full buffer and the flusher may take at the same moment:
    # pause one taker between counting a buffer and taking it while the other takes.
    client = Client(f"sqlite:///{tmp_path / 't.db'}", str(tmp_path / "a"), settings=make_settings())
    try:
        with client.run(experiment="take") as run:
            for i in range(10):
                run.log_metric("m", float(i))
            source, first = inspect.getsourcelines(ActiveRun.take_chunks)
            counted = first + next(i for i, line in enumerate(source) if "if n:" in line)
            other: list[int] = []
            other_done = threading.Event()
            # the other taker either takes meanwhile (a bug) or waits for the lock (right):
            # either way ``settled`` is set, so the pause lasts only as long as it must
            settled = threading.Event()
            lock = run._take_lock

            class Watched:
                def __enter__(self) -> None:
                    if not lock.acquire(blocking=False):
                        if threading.current_thread().name == "other-taker":
                            settled.set()
                        lock.acquire()

                def __exit__(self, *exc: object) -> None:
                    lock.release()

            run._take_lock = Watched()  # type: ignore[assignment]

            def other_taker() -> None:
                other.extend(c.count for c in run.take_chunks())
                other_done.set()
                settled.set()

            def pause_after_counting(frame: FrameType, event: str, arg: object) -> Any:
                if frame.f_code is not ActiveRun.take_chunks.__code__:
                    return None
                if event == "line" and frame.f_lineno == counted and not settled.is_set():
                    threading.Thread(target=other_taker, name="other-taker").start()
                    assert settled.wait(timeout=5), "the other taker neither took nor waited"
                return pause_after_counting

            sys.settrace(pause_after_counting)
            try:
                mine = [c.count for c in run.take_chunks()]
            finally:
                sys.settrace(None)
            assert other_done.wait(timeout=5)
            assert sum(mine) + sum(other) == 10
    finally:
        client.close()


def test_user_attribution_from_chacha_user(tmp_path: Path) -> None:
    settings = Settings.from_env({"CHACHA_USER": "grace"}).with_overrides(flush_interval=0.05)
    client = Client(f"sqlite:///{tmp_path / 'u.db'}", str(tmp_path / "a"), settings=settings)
    try:
        assert client.current_user() == "grace"
        with client.run(experiment="e"):
            pass
        other = Client(f"sqlite:///{tmp_path / 'u.db'}", str(tmp_path / "a"), user="linus")
        with other.run(experiment="e"):
            pass
        other.close()
        assert [r.created_by for r in client.my_runs()] == ["grace"]
        mine = client.my_last_run()
        assert mine is not None and mine.created_by == "grace"
        assert {r.created_by for r in client.runs()} == {"grace", "linus"}
    finally:
        client.close()


def test_use_store_switches_databases(tmp_path: Path) -> None:
    client = Client(
        f"sqlite:///{tmp_path / 'one.db'}", str(tmp_path / "a"), settings=make_settings()
    )
    try:
        with client.run(experiment="one"):
            pass
        client.use_store(f"sqlite:///{tmp_path / 'two.db'}")
        assert client.runs() == []
        with (
            client.run(experiment="two"),
            pytest.raises(InvalidInput, match="while runs are active"),
        ):
            client.use_store(f"sqlite:///{tmp_path / 'one.db'}")
        client.use_store(f"sqlite:///{tmp_path / 'one.db'}")
        assert [r.experiment for r in client.runs()] == ["one"]
    finally:
        client.close()


def test_unsupported_store_urls_are_refused(tmp_path: Path) -> None:
    client = Client("mysql://localhost/x", str(tmp_path), settings=make_settings())
    with pytest.raises(InvalidInput, match="unsupported store URL"):
        client.runs()


def test_archive_and_delete_archived_remove_rows_and_files(client: Client, tmp_path: Path) -> None:
    with client.run(experiment="old") as old:
        client.log_artifact("blob", b"only-here")
        client.log_artifact("shared", b"shared-bytes")
    with client.run(experiment="keep") as keep:
        client.log_artifact("shared", b"shared-bytes")
    objects = tmp_path / "artifacts" / "objects"
    assert len(list(objects.rglob("*"))) == 4  # 2 folders + 2 distinct objects
    assert client.archive_runs(older_than_days=0, experiment="old") == 1
    assert [r.id for r in client.runs()] == [keep.id]
    assert client.delete_archived() == 1
    with pytest.raises(NotFound):
        client.get_run(old.id)
    assert client.load_artifact(keep.id, "shared") == b"shared-bytes"
    assert len([p for p in objects.rglob("*") if p.is_file()]) == 1
    with pytest.raises(InvalidInput):
        client.archive_runs(older_than_days=-1)


def test_queries_see_points_logged_just_before_them(client: Client) -> None:
    with client.run(experiment="ryw") as run:
        client.log_metric("acc", 0.5)
        assert client.get_run(run.id).metrics == {"acc": 0.5}
        client.log_metric("acc", 0.9)
        best = client.best_run("acc")
        assert best is not None and best.value == 0.9
        assert run.info().metric_summaries["acc"].count == 2


def test_delete_archived_keeps_files_a_model_version_still_uses(client: Client) -> None:
    from chachaml.client.registry import Registry

    registry = Registry(client)
    with client.run(experiment="old"):
        client.log_artifact("model", b"weights-v1")
    with client.run(experiment="keep") as keep:
        client.log_artifact("model", b"weights-v1")
        version = registry.register_model("m", run_id=keep.id)
        client.log_artifact("model", b"weights-v2")  # the run's record moves on; v1 stays
    assert client.archive_runs(older_than_days=0, experiment="old") == 1
    assert client.delete_archived() == 1
    assert registry.load_model("m", version=version.version) == b"weights-v1"


def test_threads_logging_the_same_metric_keep_their_points_paired(client: Client) -> None:
    with client.run(experiment="threads") as run:

        def worker(t: int) -> None:
            for i in range(t, 20_000, 4):
                run.log_metric("shared", float(i), step=i)  # value == step, from 4 threads

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    history = client.metric_history(run.id, "shared")
    assert history.steps == list(range(20_000))
    assert history.values == [float(i) for i in range(20_000)]


def test_a_stop_request_reaches_the_run_at_its_heartbeat_and_it_ends_stopped(
    client: Client,
) -> None:
    told: list[str] = []
    with client.run(experiment="mnist", on_stop=lambda r: told.append(r.reason or "")) as run:
        stops = Stops(client)
        assert not stops.should_stop() and not run.should_stop()
        asked = stops.stop_run(run.id, "enough")
        assert (asked.run_id, asked.user, asked.reason) == (run.id, "tester", "enough")
        heard = threading.Event()
        stops.on_stop(lambda r: heard.set())
        assert heard.wait(5), "the stop request did not arrive within 5 s"
        assert stops.should_stop() and run.stop_request == asked
        late = threading.Event()
        run.on_stop(lambda r: late.set())  # registered after the request: runs at once
        assert late.wait(5)
    assert run.status == "stopped"
    stored = client.get_run(run.id)
    assert stored.status == "stopped" and stored.stop_request == asked
    wait_for(lambda: told == ["enough"], 5, "the on_stop given to run() ran once")
    with pytest.raises(Conflict, match=r"already ended \(stopped\)"):
        stops.stop_run(run.id)
    with pytest.raises(NoActiveRun, match="should_stop and on_stop act on"):
        stops.should_stop()
