"""The tree stays readable: no module over 600 lines, one import name per layer."""

from __future__ import annotations

from pathlib import Path

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
        "errors.py", "settings.py", "cli", "records", "store", "tools", "client", "server",
        "chat",
    }  # fmt: skip
