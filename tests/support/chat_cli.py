"""``chachaml chat`` over a seeded store, with both providers' keys and URLs set to the fake
provider of :mod:`tests.support.fake_providers`, for the CLI test and the README's example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from tests.support.fake_providers import Call, FakeProvider, Say, fake_provider
from tests.support.mcp_seed import seeded_store


def chat_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeProvider]:
    """Set the environment ``chachaml chat`` reads, then yield the fake provider it reaches."""
    url = anyio.run(seeded_store, tmp_path)
    monkeypatch.setenv("CHACHAML_STORE", url)
    monkeypatch.setenv("CHACHAML_ARTIFACTS", str(tmp_path / "artifacts"))
    with fake_provider() as (served, base):
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-cli-anthropic")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{base}/v1")
        yield served


def best_iris(fake: FakeProvider) -> None:
    fake.play(
        Call([("best_run", {"metric": "acc", "experiment": "iris"})]),
        Say(lambda seen: "Best: " + seen.results[0].content),
    )
