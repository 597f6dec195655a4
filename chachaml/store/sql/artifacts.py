"""Artifact records: a run's named pointers to content-addressed objects.

The bytes live in an artifact store (:mod:`chachaml.store.artifacts`); a record maps a name
to an object's URI, and one object may back many records (the same bytes logged twice) and
model versions, so an object is unused only when nothing references its URI.
"""

from __future__ import annotations

from collections.abc import Sequence

from chachaml.errors import NotFound
from chachaml.records.runs import Artifact, ArtifactRecord, to_datetime
from chachaml.store.sql.database import Database, Row, Tx
from chachaml.store.sql.rows import require_run

ARTIFACT_SELECT = (
    "SELECT name, content_type, serializer, size, sha256, uri, created_at FROM artifacts"
)
# another run's artifact, or a model version's file
URI_IN_USE = (
    "SELECT 1 AS used FROM artifacts WHERE uri = ?"
    " UNION ALL SELECT 1 AS used FROM model_versions WHERE artifact_uri = ?"
)


def artifact_from_row(row: Row) -> Artifact:
    """An artifact from a row of ``ARTIFACT_SELECT``."""
    return Artifact(
        name=row["name"],
        content_type=row["content_type"],
        serializer=row["serializer"],
        size=row["size"],
        sha256=row["sha256"],
        uri=row["uri"],
        created_at=to_datetime(row["created_at"]),
    )


async def unused_in(db: Tx, uris: Sequence[str]) -> list[str]:
    """Those of ``uris`` that no artifact record or model version references, inside a read."""
    return [uri for uri in uris if not await db.fetchall(URI_IN_USE, (uri, uri))]


class Artifacts:
    """Artifact records of runs."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def add_artifact(self, record: ArtifactRecord) -> None:
        """Record an artifact (replacing one of the same name)."""

        async def body(db: Tx) -> None:
            await require_run(db, record.run_id)
            await db.execute(
                "INSERT INTO artifacts (run_id, name, content_type, serializer, size, sha256,"
                " uri, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (run_id, name) DO UPDATE SET content_type = excluded.content_type,"
                " serializer = excluded.serializer, size = excluded.size,"
                " sha256 = excluded.sha256, uri = excluded.uri, created_at = excluded.created_at",
                (
                    record.run_id,
                    record.name,
                    record.content_type,
                    record.serializer,
                    record.size,
                    record.sha256,
                    record.uri,
                    record.created_at,
                ),
            )

        await self._db.transact(body)

    @staticmethod
    async def of_run(db: Tx, run_id: str) -> list[Artifact]:
        """A run's artifacts by name, inside a read."""
        found = await db.fetchall(ARTIFACT_SELECT + " WHERE run_id = ? ORDER BY name", (run_id,))
        return [artifact_from_row(r) for r in found]

    async def list_artifacts(self, run_id: str) -> list[Artifact]:
        """A run's artifacts."""

        async def body(db: Tx) -> list[Artifact]:
            await require_run(db, run_id)
            return await self.of_run(db, run_id)

        return await self._db.query(body)

    async def get_artifact(self, run_id: str, name: str) -> Artifact:
        """One artifact, or ``NotFound`` listing what the run has."""
        arts = await self.list_artifacts(run_id)
        for art in arts:
            if art.name == name:
                return art
        names = ", ".join(a.name for a in arts) or "none"
        raise NotFound(f"run {run_id!r} has no artifact {name!r} (its artifacts: {names})")

    async def unused_uris(self, uris: Sequence[str]) -> list[str]:
        """Those of ``uris`` that no artifact row or model version references right now.

        The file sweep after deleting archived runs asks again right before deleting each
        file: another run may have logged the same bytes (the same object) since.
        """
        return await self._db.query(lambda db: unused_in(db, uris))
