"""The tree stays readable: no module over 600 lines, one import name per layer, tests mirror it."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 600


def test_no_module_is_longer_than_a_person_can_hold_in_their_head() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in [*(ROOT / "chachaml").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
        if (n := len(path.read_text().splitlines())) > LIMIT
    }
    assert long == {}, f"split these by noun: {long}"


def test_the_top_level_holds_only_the_public_modules_and_the_layers() -> None:
    top = {p.name for p in (ROOT / "chachaml").iterdir() if not p.name.startswith("__")}
    top -= {"py.typed"}
    assert top == {
        "errors.py", "settings.py", "tls.py", "cli", "records", "store", "tools", "client",
        "server", "chat",
    }  # fmt: skip


#: Repository-level checks (docs, packaging, the tree itself): the only tests at the top,
#: beside those of the package's top-level modules (``tests/test_tls.py`` for ``tls.py``).
REPOSITORY_CHECKS = {
    "test_deploy.py", "test_docs.py", "test_docs_screenshot.py", "test_environment.py",
    "test_first_hour.py", "test_http_examples.py", "test_layout.py", "test_public_api.py",
}  # fmt: skip


def test_the_tests_mirror_the_package_tree() -> None:
    """tests/server/mcp/ tests chachaml/server/mcp/, tests/bench/ tests bench/; support/ holds
    helpers and e2e/ everything with real processes, sockets or a browser."""
    tests = ROOT / "tests"
    folders = {p.parent.relative_to(tests) for p in tests.rglob("*.py")} - {Path()}
    strays = sorted(
        str(f)
        for f in folders
        if f.parts[0] not in {"support", "e2e"}
        and not (ROOT / ("" if f.parts[0] == "bench" else "chachaml") / f).is_dir()
    )
    assert strays == [], f"no package folder for tests/{strays}: move them under their layer"
    packages = sorted(str(f) for f in folders if not (tests / f / "__init__.py").is_file())
    assert packages == [], f"add __init__.py to tests/{packages} (duplicate basenames need it)"
    top = {p.name for p in tests.glob("test_*.py")}
    leaves = {f"test_{p.stem}.py" for p in (ROOT / "chachaml").glob("*.py") if p.stem[0] != "_"}
    stray = sorted(top - REPOSITORY_CHECKS - leaves)
    assert stray == [], f"move {stray} under its layer"
    helpers = sorted(p.name for p in (tests / "support").rglob("test_*.py"))
    assert helpers == [], f"tests/support holds helpers, not tests: {helpers}"


@pytest.fixture(scope="module")
def built_once() -> str:
    return "a module-scoped fixture"


def test_a_module_with_a_module_fixture_is_one_xdist_group(
    built_once: str, request: pytest.FixtureRequest
) -> None:
    """conftest puts such a module in one group, so its seeded servers and browsers are built
    once, on one worker; under ``--dist loadgroup`` the group shows in the node id."""
    group = request.node.get_closest_marker("xdist_group")
    assert group is not None and group.args == ("tests.test_layout",)
    if getattr(request.config.option, "loadgroup", False):  # an xdist worker grouping
        assert request.node.nodeid.endswith("@tests.test_layout"), request.node.nodeid
