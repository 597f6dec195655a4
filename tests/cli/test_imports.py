"""``chachaml import mlflow``: a real MLflow ``mlruns`` folder in, the count check out."""

from __future__ import annotations

from pathlib import Path

import pytest

from chachaml.cli import main
from chachaml.client.client import Client
from chachaml.tools import runs as run_ops
from tests.support.mlflow_seed import EXPECTED, Seeded, seed_mlflow

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),  # MLflow's, not chachaml's
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


@pytest.fixture(scope="module")
def mlruns(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    """A file-backed MLflow store (a ``mlruns`` folder), as ``mlflow`` makes by default."""
    folder = tmp_path_factory.mktemp("mlflow")
    store = folder / "mlruns"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 opens a folder only if asked
        env.setenv("MLFLOW_TRACKING_URI", store.as_uri())  # its folder registry's own client
        return store, seed_mlflow(store.as_uri(), folder / "artifacts", folder)


@pytest.fixture(autouse=True)
def file_store_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whatever the command sets in the environment is undone after each test."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # anything MLflow leaves in the working folder is seen


def test_nothing_is_left_in_the_working_folder(mlruns: tuple[Path, Seeded], tmp_path: Path) -> None:
    folder, _ = mlruns
    store = ["--store", f"sqlite:///{tmp_path / 'c.db'}", "--artifacts", str(tmp_path / "a")]
    assert main(["import", "mlflow", "--from", str(folder), *store]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c.db"]


def _counts(out: str) -> dict[str, tuple[int, int, int]]:
    """The count table's rows: in MLflow, in chachaml, added now."""
    rows = {}
    for line in out.splitlines():
        *words, a, b, c = ["", "", "", *line.split()]
        if a.isdigit() and b.isdigit() and c.isdigit():
            rows["_".join(w for w in words if w)] = (int(a), int(b), int(c))
    return rows


def test_a_mlruns_folder_imports_with_a_count_check_and_then_adds_nothing(
    mlruns: tuple[Path, Seeded], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, seeded = mlruns
    store = ["--store", f"sqlite:///{tmp_path / 'c.db'}", "--artifacts", str(tmp_path / "a")]
    assert main(["import", "mlflow", "--from", folder.as_uri(), *store]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == {k: (n, n, n) for k, n in EXPECTED.items()}
    assert out.rstrip().endswith("counts verified")

    # the same folder by its path: everything is there already, and it says so
    assert main(["import", "mlflow", "--from", str(folder), *store]) == 0
    out = capsys.readouterr().out
    assert _counts(out) == {k: (n, n, 0) for k, n in EXPECTED.items()}
    assert "nothing new: everything was imported already; counts verified" in out
    client = Client(store=store[1], artifacts=store[3])
    try:
        run = client.get_run(seeded.runs["sweep"])
        assert (run.name, len(run.artifacts), run.metric_summaries["loss"].count) == (
            "sweep",
            4,
            1000,
        )
    finally:
        client.close()


def test_a_count_that_differs_exits_1_naming_it(
    mlruns: tuple[Path, Seeded], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, seeded = mlruns
    store = ["--store", f"sqlite:///{tmp_path / 'c.db'}", "--artifacts", str(tmp_path / "a")]
    args = ["import", "mlflow", "--from", str(folder), "-e", "vision", "--experiment", "nlp"]
    assert main([*args, *store]) == 0
    capsys.readouterr()
    client = Client(store=store[1], artifacts=store[3])
    try:  # chachaml changed after the import: the check says so
        client.op(run_ops.set_tags, seeded.runs["bert"], {"extra": "added later"})
    finally:
        client.close()
    assert main([*args, *store]) == 1
    err = capsys.readouterr().err
    assert "count check failed (tags 1 != 2)" in err


def test_the_readmes_import_commands_parse() -> None:
    from chachaml.cli import build_parser
    from tests.support.readme import README

    lines = [line.split("#")[0].split() for line in README.splitlines()]
    commands = [words for words in lines if words[:3] == ["chachaml", "import", "mlflow"]]
    assert len(commands) == 2
    for words in commands:
        args = build_parser().parse_args(words[1:])
        assert args.command == "import" and args.source
    assert build_parser().parse_args(commands[1][1:]).experiment == ["vision", "nlp"]
