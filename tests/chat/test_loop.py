"""The chat loop end to end: the official SDKs against a loopback fake provider, real MCP tools
over the seeded store of :mod:`tests.support.mcp_seed`, for both providers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp.server.mcpserver import MCPServer

from chachaml.chat import (
    SYSTEM_PROMPT,
    IterationLimitReached,
    MissingApiKey,
    ProviderError,
    aask,
    ask,
)
from chachaml.errors import InvalidInput
from chachaml.server.mcp.server import build_mcp
from chachaml.settings import Settings
from chachaml.store import open_store
from chachaml.store.artifacts import open_artifact_store
from chachaml.tools.catalogue import selected_tools
from tests.support.fake_providers import Call, Fail, FakeProvider, Hang, Say, Seen
from tests.support.mcp_seed import IRIS, MID, seeded_store

KEY = "sk-test-0123456789abcdef"
NO_ENV = Settings(user="tester")
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    path = tmp_path_factory.mktemp("chat")
    return anyio.run(seeded_store, path), path / "artifacts"


@pytest.fixture
def base_url(provider_server: tuple[FakeProvider, str], provider: str) -> str:
    url = provider_server[1]
    return url if provider == "anthropic" else f"{url}/v1"


@pytest.fixture
async def server(seeded: tuple[str, Path]) -> AsyncIterator[MCPServer]:
    store = await open_store(seeded[0])
    try:
        yield build_mcp(store, artifacts=open_artifact_store(str(seeded[1])), read_only=True)
    finally:
        await store.close()


def results(seen: Seen) -> str:
    return " | ".join(r.content for r in seen.results)


async def test_answer_cites_the_best_iris_run_found_by_a_real_tool_call(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: f"The best iris run: {results(seen)}"),
    )
    answer = await aask(
        "Which iris run has the best accuracy?",
        server=server,
        provider=provider,
        api_key=KEY,
        base_url=base_url,
        settings=NO_ENV,
    )
    assert IRIS in answer.answer and "0.97" in answer.answer
    assert answer.iterations == 2 and answer.provider == provider
    [call] = answer.tool_calls
    assert (call.name, call.arguments, call.is_error) == (
        "best_run",
        {"metric": "acc", "experiment": "iris"},
        False,
    )
    assert IRIS in call.result
    first, second = fake.seen
    assert first.key == KEY and first.model == answer.model
    assert set(first.tools) == set(selected_tools(read_only=True))
    assert first.system.startswith(SYSTEM_PROMPT) and "best_run" in first.system
    assert first.texts == [("user", "Which iris run has the best accuracy?")]
    assert [r.is_error for r in second.results] == [False]


async def test_one_turn_may_call_several_tools_and_gets_every_result_back_in_order(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(
        Call(
            [
                ("get_run", {"run_id": IRIS}),
                ("get_model_version", {"model_name": "digits", "stage": "production"}),
            ]
        ),
        Call([("get_tags", {"run_id": MID})]),
        Say(lambda seen: f"tags: {results(seen)}"),
    )
    answer = await aask(
        "Tell me about the iris run and the production digits model",
        server=server,
        provider=provider,
        api_key=KEY,
        base_url=base_url,
        settings=NO_ENV,
    )
    assert [c.name for c in answer.tool_calls] == ["get_run", "get_model_version", "get_tags"]
    assert answer.iterations == 3 and "reviewed" in answer.answer
    run_result, version_result = fake.seen[1].results
    assert IRIS in run_result.content and "svm" in run_result.content
    assert MID in version_result.content and "production" in version_result.content
    assert run_result.call_id != version_result.call_id


async def test_tool_errors_go_back_to_the_model_as_tool_results(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(
        Call([("get_run", {"run_id": "f" * 32}), ("add_tag", {"run_id": IRIS, "key": "k"})]),
        Say(lambda seen: f"I could not find it: {results(seen)}"),
    )
    answer = await aask(
        "Show run ffff",
        server=server,
        provider=provider,
        api_key=KEY,
        base_url=base_url,
        settings=NO_ENV,
    )
    missing, write = fake.seen[1].results
    assert missing.is_error and "f" * 32 in missing.content
    assert write.is_error and "add_tag" in write.content  # read-only: no write tools
    assert [c.is_error for c in answer.tool_calls] == [True, True]
    assert answer.answer.startswith("I could not find it")


async def test_the_iteration_cap_ends_the_loop_with_a_clear_error(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(*[Call([("list_experiments", {})]) for _ in range(3)])
    with pytest.raises(IterationLimitReached, match="after 3 replies") as caught:
        await aask(
            "Loop forever",
            server=server,
            provider=provider,
            api_key=KEY,
            base_url=base_url,
            max_iterations=3,
            settings=NO_ENV,
        )
    assert len(fake.seen) == 3 and fake.script == []
    assert [c.name for c in caught.value.tool_calls] == ["list_experiments"] * 2


async def test_a_rejected_key_is_a_clear_auth_error(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(Fail(401, "invalid x-api-key"))
    with pytest.raises(ProviderError, match="rejected the API key") as caught:
        await aask(
            "hi", server=server, provider=provider, api_key="bad", base_url=base_url,
            settings=NO_ENV,
        )  # fmt: skip
    assert (caught.value.kind, caught.value.status) == ("auth", 401)
    assert "invalid x-api-key" in str(caught.value) and "bad" not in str(caught.value).split()


async def test_a_rate_limit_is_retried_after_the_providers_delay(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(Fail(429, "slow down", {"retry-after": "0.01"}), Say(lambda seen: "done"))
    answer = await aask(
        "hi", server=server, provider=provider, api_key=KEY, base_url=base_url, max_retries=1,
        settings=NO_ENV,
    )  # fmt: skip
    assert answer.answer == "done" and len(fake.seen) == 2


async def test_a_lasting_rate_limit_says_when_to_retry(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(Fail(429, "slow down", {"retry-after": "7"}))
    with pytest.raises(ProviderError, match=r"rate limit reached.*retry after 7 s") as caught:
        await aask(
            "hi", server=server, provider=provider, api_key=KEY, base_url=base_url, max_retries=0,
            settings=NO_ENV,
        )  # fmt: skip
    assert (caught.value.kind, caught.value.retry_after) == ("rate_limit", 7.0)


async def test_an_overloaded_provider_is_a_clear_error(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(Fail(529, "Overloaded"))
    with pytest.raises(ProviderError, match="overloaded") as caught:
        await aask(
            "hi", server=server, provider=provider, api_key=KEY, base_url=base_url, max_retries=0,
            settings=NO_ENV,
        )  # fmt: skip
    assert caught.value.kind == "overloaded" and caught.value.status == 529


async def test_a_provider_that_does_not_answer_times_out(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    fake.play(Hang())
    with anyio.fail_after(10), pytest.raises(ProviderError, match="did not answer") as caught:
        await aask(
            "hi", server=server, provider=provider, api_key=KEY, base_url=base_url, timeout=0.3,
            max_retries=0, settings=NO_ENV,
        )  # fmt: skip
    assert caught.value.kind == "timeout"


async def test_an_unreachable_provider_is_a_connection_error(
    server: MCPServer, provider: str
) -> None:
    from tests.support.mcp_seed import free_port

    with pytest.raises(ProviderError, match="could not reach") as caught:
        await aask(
            "hi", server=server, provider=provider, api_key=KEY, max_retries=0,
            base_url=f"http://127.0.0.1:{free_port()}", settings=NO_ENV,
        )  # fmt: skip
    assert caught.value.kind == "connection"


async def test_the_key_and_endpoint_come_from_settings_and_history_is_sent(
    fake: FakeProvider, server: MCPServer, provider: str, base_url: str
) -> None:
    settings = Settings(
        anthropic_api_key="sk-env-anthropic",
        openai_api_key="sk-env-openai",
        anthropic_base_url=base_url,
        openai_base_url=base_url,
    )
    fake.play(Say(lambda seen: "ok"))
    answer = await aask(
        "and the second?",
        server=server,
        provider=provider,
        model="my-model",
        history=[{"role": "user", "content": "first?"}, {"role": "assistant", "content": "A"}],
        settings=settings,
    )
    [seen] = fake.seen
    assert seen.key == f"sk-env-{provider}" and seen.model == "my-model" == answer.model
    assert seen.texts == [("user", "first?"), ("assistant", "A"), ("user", "and the second?")]


async def test_without_a_key_the_error_names_the_environment_variable(
    server: MCPServer, provider: str
) -> None:
    with pytest.raises(MissingApiKey, match=f"{provider.upper()}_API_KEY"):
        await aask("hi", server=server, provider=provider, settings=NO_ENV)


@pytest.mark.parametrize(
    ("question", "options", "message"),
    [
        ("", {}, "question"),
        ("hi", {"provider": "gemini"}, "provider"),
        ("hi", {"max_iterations": 0}, "max_iterations"),
        ("hi", {"history": [{"role": "system", "content": "x"}]}, "history"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    server: MCPServer, question: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await aask(question, server=server, api_key=KEY, settings=NO_ENV, **options)  # type: ignore[arg-type]


def test_ask_opens_the_store_and_answers_from_it(
    fake: FakeProvider, seeded: tuple[str, Path], provider: str, base_url: str
) -> None:
    fake.play(
        Call([("list_experiments", {})]),
        Say(lambda seen: json.dumps([r.content for r in seen.results])),
    )
    answer = ask(
        "Which experiments are there?",
        provider,
        KEY,
        base_url=base_url,
        store=seeded[0],
        artifacts=str(seeded[1]),
        settings=NO_ENV,
    )
    assert "iris" in answer.answer and "mnist" in answer.answer
    assert set(fake.seen[0].tools) == set(selected_tools(read_only=True))


async def test_ask_works_inside_a_running_event_loop(
    fake: FakeProvider, seeded: tuple[str, Path], provider: str, base_url: str
) -> None:
    fake.play(Say(lambda seen: "fine"))
    answer = ask(
        "hi", provider, KEY, base_url=base_url, store=seeded[0], allow_writes=True,
        settings=NO_ENV,
    )  # fmt: skip
    assert answer.answer == "fine"
    assert set(fake.seen[0].tools) == set(selected_tools())
