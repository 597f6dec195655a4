"""Copy a local artifact root into another artifact store (S3), verifying every object.

Objects keep their relative URIs, so the database needs no change: point
``CHACHAML_ARTIFACTS`` at the target afterwards. Resumable: objects the target already holds
with the right hash and size are skipped, so an interrupted migration is simply run again.
Each file is hashed as it is read; a file whose content does not match its name (a damaged
local copy) is reported rather than uploaded under its name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

from chachaml.store.artifacts.local import LocalArtifactStore
from chachaml.store.artifacts.protocol import ArtifactStore

Progress = Callable[[str, int, int], None]
WORKERS = 4


@dataclass
class ArtifactMigration:
    """What a migration did."""

    copied: int = 0
    skipped: int = 0
    bytes_copied: int = 0
    mismatched: list[str] = field(default_factory=list)


async def migrate_artifacts(
    source: LocalArtifactStore, target: ArtifactStore, progress: Progress | None = None
) -> ArtifactMigration:
    """Copy every object of ``source`` that ``target`` lacks; see the module docs."""
    await target.check()
    objects = await anyio.to_thread.run_sync(lambda: list(source.objects()))
    report = ArtifactMigration()
    done = 0
    if progress is not None:
        progress("objects", 0, len(objects))

    pending = iter(objects)

    async def worker() -> None:
        nonlocal done
        for obj in pending:  # one shared iterator: each object goes to one worker
            if await target.contains(obj):
                report.skipped += 1
            else:
                stored = await target.put_file(source.path_of(obj))
                if stored.sha256 == obj.sha256:
                    report.copied += 1
                    report.bytes_copied += stored.size
                else:
                    report.mismatched.append(obj.uri)
            done += 1
            if progress is not None:
                progress("objects", done, len(objects))

    async with anyio.create_task_group() as tg:
        for _ in range(WORKERS):
            tg.start_soon(worker)
    report.mismatched.sort()
    return report
