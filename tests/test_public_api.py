"""The public surface is pinned. That importing chachaml stays light is checked in a fresh
interpreter, in :mod:`tests.e2e.test_imports`."""

from __future__ import annotations

import chachaml


def test_module_level_functions_are_the_default_clients_methods() -> None:
    client = chachaml.default_client()
    for name in ("log_metric", "run", "best_run", "tracked", "flush", "use_store"):
        assert getattr(chachaml, name).__self__ is client


def test_every_exported_name_exists() -> None:
    for name in chachaml.__all__:
        assert hasattr(chachaml, name), name
    assert sorted(chachaml.__all__) == list(chachaml.__all__)


def test_tracking_api_names_are_exported() -> None:
    expected = {
        "run", "start_run", "end_run", "active_run", "log_param", "log_params", "log_metric",
        "log_metrics", "set_tag", "set_tags", "set_run_tag", "set_note", "log_dataset",
        "log_artifact", "log_file", "log_table", "load_artifact", "list_artifacts", "runs",
        "get_run", "last_run", "search_runs", "best_run", "compare_runs", "export_runs",
        "experiments", "create_experiment", "metric_history", "tracked", "batched_metrics",
        "flush", "current_user", "my_runs", "my_last_run", "archive_runs", "delete_archived",
        "use_store", "arun", "astart_run", "aflush", "aget_run", "aruns", "asearch_runs",
        "abest_run", "acompare_runs", "Client", "ActiveRun", "Run", "RunInfo",
    }  # fmt: skip
    assert expected <= set(chachaml.__all__)


def test_the_alert_api_names_are_exported() -> None:
    expected = {
        "set_threshold_alert", "set_drop_alert", "set_stale_alert", "set_silent_alert",
        "alerts", "delete_alert", "mute_alert", "unmute_alert", "send_test_alert",
        "check_alerts", "alert_history", "Alerts", "Alert", "AlertEvent", "AlertTrial",
    }  # fmt: skip
    assert expected <= set(chachaml.__all__)
    # no public name starts with "test": pytest would collect it from a user's test module
    assert [n for n in chachaml.__all__ if n.lower().startswith("test")] == []


def test_the_readme_registry_listing_is_a_function(tmp_path: object) -> None:
    # ml.models() once reached the module chachaml.models (a TypeError); records/ holds it now
    assert callable(chachaml.models) and "models" in chachaml.__all__
    client = chachaml.Client(store=f"sqlite:///{tmp_path}/m.db", artifacts=f"{tmp_path}/a")
    try:
        assert chachaml.Registry(client).models() == []
        assert client.registry.models() == [] and client.registry.client is client
    finally:
        client.close()


def test_a_clients_registry_alerts_and_pipelines_act_on_that_client(tmp_path: object) -> None:
    client = chachaml.Client(store=f"sqlite:///{tmp_path}/m.db", artifacts=f"{tmp_path}/a")
    try:
        assert client.alerts.alerts() == [] and client.alerts.client is client
        done = client.pipelines.run_pipeline("etl", [lambda ctx: 1])
        assert client.pipelines.pipeline(done.id).status == "completed"
        assert [p.id for p in client.pipelines.pipelines()] == [done.id]
        assert client.get_run(done.run_id).experiment == "etl"
        assert chachaml.default_client().settings.store_url != client.settings.store_url
    finally:
        client.close()


def test_the_verb_table_holds(tmp_path: object) -> None:
    """``log_*`` appends to the current run, ``set_*`` overwrites, and the async twins take
    the same arguments as their sync forms; listings are ``Runs`` (a list that renders)."""
    import inspect

    from chachaml.client.client import Client

    for name in ("runs", "search_runs", "best_run"):
        sync, twin = getattr(Client, name), getattr(Client, f"a{name}")
        assert list(inspect.signature(sync).parameters) == list(
            inspect.signature(twin).parameters
        ), name
    client = chachaml.Client(store=f"sqlite:///{tmp_path}/v.db", artifacts=f"{tmp_path}/a")
    try:
        with client.run("verbs") as run:
            client.set_tag("stage", "a")
            client.set_tags({"stage": "b"})  # overwrites
            client.log_metric("acc", 0.5)
        client.set_run_tag(run.id, "stage", "c")
        assert client.get_run(run.id).tags["stage"] == "c"
        listing = client.runs()
        assert isinstance(listing, chachaml.Runs) and listing == [client.runs()[0]]
        found = client.search_runs("acc", ">", 0.4)
        assert isinstance(found, chachaml.Runs) and [r.id for r in found] == [run.id]
        assert client.my_runs(experiment="verbs")[0].id == run.id
    finally:
        client.close()


def test_each_kind_of_alert_has_its_own_function_with_only_its_arguments(
    tmp_path: object,
) -> None:
    client = chachaml.Client(store=f"sqlite:///{tmp_path}/a.db", artifacts=f"{tmp_path}/a")
    try:
        api = client.alerts
        low = api.set_threshold_alert("low", "acc", "<", 0.8, experiment="mnist")
        drop = api.set_drop_alert("drop", "acc", 10, baseline_runs=3)
        stale = api.set_stale_alert("stale", 24, experiment="mnist")
        silent = api.set_silent_alert("silent", 30, cooldown_minutes=5)
        assert [a.kind for a in (low, drop, stale, silent)] == [
            "threshold", "drop", "no_completed_run", "silent_run",
        ]  # fmt: skip
        assert (low.metric_key, low.op, low.threshold) == ("acc", "<", 0.8)
        assert drop.drop_pct == 10 and drop.baseline_runs == 3
        assert sorted(a.name for a in api.alerts()) == ["drop", "low", "silent", "stale"]
        import inspect

        assert "drop_pct" not in inspect.signature(api.set_threshold_alert).parameters
        assert "op" not in inspect.signature(api.set_silent_alert).parameters
    finally:
        client.close()
