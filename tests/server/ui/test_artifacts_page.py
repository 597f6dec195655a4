"""Route tests for the Artifacts page: a tree of names, previews on demand, human sizes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chachaml.server.app import create_app
from chachaml.server.ui import artifacts as page
from chachaml.store.artifacts import open_artifact_store
from chachaml.store.server_state import ServerStore
from chachaml.tools import artifacts as artifact_ops
from tests.support.mcp_seed import MID, PNG_1PX, seed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def web(store: ServerStore, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The seeded store plus a ``plots/`` folder, a nested one, and a large text file."""
    root = tmp_path / "artifacts"
    await seed(store, root)
    arts = open_artifact_store(str(root))
    for name in ("plots/roc.png", "plots/pr/curve.png"):
        await artifact_ops.put_bytes(store, arts, MID, name, PNG_1PX, content_type="image/png",
                                     serializer="bytes")  # fmt: skip
    big = b"x" * (page.PREVIEW_BYTES + 1)
    await artifact_ops.put_bytes(store, arts, MID, "logs/big.txt", big, content_type="text/plain",
                                 serializer="text")  # fmt: skip
    app = create_app(store, artifacts=arts, user="bo")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        yield client


def test_human_sizes() -> None:
    assert [page.human_size(n) for n in (0, 812, 4300, 3 * 1024 * 1024 // 2, 5 << 30)] == [
        "0 B", "812 B", "4.2 KiB", "1.5 MiB", "5.0 GiB"
    ]  # fmt: skip


async def test_the_tree_nests_folders_first_with_counts_and_sizes(web: httpx.AsyncClient) -> None:
    data = (await web.get(f"/api/runs/{MID}/artifacts")).json()
    assert data["selected"] is None
    assert all("preview" not in a for a in data["artifacts"])  # nothing read up front
    top = [(n["type"], n["name"]) for n in data["tree"]]
    assert top == [("folder", "logs"), ("folder", "plots"), ("file", "curve.png"),
                   ("file", "model.bin"), ("file", "notes.txt"), ("file", "recall")]  # fmt: skip
    plots = data["tree"][1]
    assert (plots["path"], plots["count"]) == ("plots/", 2)
    assert [(n["type"], n.get("label") or n["name"]) for n in plots["children"]] == [
        ("folder", "pr"), ("file", "roc.png")
    ]  # fmt: skip
    (inner,) = plots["children"][0]["children"]
    assert (inner["name"], inner["label"], inner["kind"]) == ("plots/pr/curve.png", "curve.png",
                                                              "image")  # fmt: skip
    assert inner["thumb"] == f"/api/artifacts/{MID}/plots/pr/curve.png"
    assert data["tree"][0]["size_text"] == "256.0 KiB"


async def test_a_preview_is_read_when_asked_for(web: httpx.AsyncClient) -> None:
    async def get(name: str) -> dict[str, object]:
        answer = await web.get(f"/api/runs/{MID}/artifacts", params={"name": name})
        assert answer.status_code == 200, answer.text
        selected: dict[str, object] = answer.json()["selected"]
        return selected

    assert (await get("recall"))["preview"] == {
        "kind": "table",
        "headers": ["label", "recall"],
        "rows": [["0", 0.99], ["1", 0.97]],
        "total_rows": 2,
    }
    assert (await get("notes.txt"))["preview"] == {"kind": "text", "text": "trained on 4 GPUs",
                                                   "cut": False}  # fmt: skip
    assert (await get("plots/roc.png"))["preview"] == {
        "kind": "image", "src": f"/api/artifacts/{MID}/plots/roc.png"
    }  # fmt: skip
    assert (await get("model.bin"))["preview"] == {"kind": "none", "reason": "binary"}
    big = await get("logs/big.txt")
    assert big["preview"] == {"kind": "none", "reason": "too large to preview"}
    assert big["size_text"] == "256.0 KiB"


async def test_the_page_renders_the_tree_and_the_chosen_preview(web: httpx.AsyncClient) -> None:
    listing = (await web.get(f"/runs/{MID}/artifacts")).text
    assert 'class="artifact-tree"' in listing and "plots/</span>" in listing
    assert "Select an artifact" in listing and "trained on 4 GPUs" not in listing
    assert 'src="/static/artifacts.js"' in listing
    chosen = (await web.get(f"/runs/{MID}/artifacts", params={"name": "notes.txt"})).text
    assert "trained on 4 GPUs" in chosen and 'aria-current="true"' in chosen
    missing = await web.get(f"/runs/{MID}/artifacts", params={"name": "nope.txt"})
    assert missing.status_code == 404 and "nope.txt" in missing.text


async def test_the_run_page_lists_thumbnails_and_human_sizes(web: httpx.AsyncClient) -> None:
    run = (await web.get(f"/runs/{MID}")).text
    assert f'<img class="thumb" src="/api/artifacts/{MID}/plots/roc.png"' in run
    assert "256.0 KiB" in run
    assert f'href="/runs/{MID}/artifacts?name=plots/roc.png"' in run
    image = await web.get(f"/api/artifacts/{MID}/plots/roc.png")
    assert image.headers["content-type"] == "image/png"
