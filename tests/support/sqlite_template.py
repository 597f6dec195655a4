"""Fresh SQLite stores made as copies of one migrated file per test process.

Migrating a new file costs the test process ~45 ms of CPU and a committed transaction, and
about a thousand tests ask for a fresh store. A byte copy of a file the same code migrated is
the same database (WAL mode is recorded in its header), at a fraction of that. The tests of
the migrations themselves open files of their own.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from pathlib import Path

from tests.support.services import on_own_loop

_template: Path | None = None


def _migrated() -> Path:
    """This process's migrated, checkpointed template file (made on first use)."""
    global _template
    if _template is None:
        from chachaml.store import open_store

        folder = Path(tempfile.mkdtemp(prefix="chachaml-template-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "chachaml.db"

        async def migrate() -> None:
            store = await open_store(f"sqlite:///{path}")
            await store.close()

        on_own_loop(migrate)
        with sqlite3.connect(path) as db:  # everything in the main file, none in a WAL
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        _template = path
    return _template


def fresh_sqlite(path: Path) -> str:
    """A new, migrated, empty SQLite store at ``path``; its URL."""
    shutil.copyfile(_migrated(), path)
    return f"sqlite:///{path}"
