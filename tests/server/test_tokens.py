"""Finding 11: tokens can be created, listed and revoked by name of the store.

That a running ``chachaml serve`` follows each change is in :mod:`tests.e2e.test_server_tokens`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chachaml.cli import main


def test_token_commands_refuse_to_guess_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHACHAML_STORE", raising=False)
    assert main(["token", "create", "--user", "ada"]) == 2
    assert "--store" in capsys.readouterr().err
    assert not (tmp_path / "chachaml.db").exists()


def test_tokens_are_listed_by_hint_and_revoked_by_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'team.db'}"
    assert main(["token", "create", "--store", url, "--user", "ada", "--scope", "admin"]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("chml_") and url in out.err and "admin" in out.err
    assert main(["token", "list", "--store", url]) == 0
    listing = capsys.readouterr().out
    assert token[:12] in listing and token not in listing and "active" in listing
    assert main(["token", "revoke", "--store", url, "1"]) == 0
    capsys.readouterr()
    assert main(["token", "list", "--store", url]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["token", "revoke", "--store", url, "99"]) == 2
