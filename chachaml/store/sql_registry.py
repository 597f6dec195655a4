"""The model registry in portable SQL: a mixin of :class:`~chachaml.store.sql_store.SQLStore`.

Every write is one transaction that first updates the model's row: that row lock makes
concurrent registrations and promotions of one model (even from other processes, on either
backend) run one after the other. The partial unique index ``model_versions_one_production``
backs the one-production-version rule.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from chachaml.errors import Conflict, NotFound
from chachaml.records.registry import (
    Model,
    ModelDetail,
    ModelVersion,
    NewModelVersion,
    Stage,
    StageChange,
)
from chachaml.records.runs import to_datetime
from chachaml.store import rows
from chachaml.store.sql_driver import Row, Tx

T = TypeVar("T")

VERSION_SELECT = """
    SELECT v.model_id, m.name, v.version, v.stage, v.run_id, v.artifact, v.artifact_uri,
           v.sha256, v.serializer, v.content_type, v.size, v.description, v.created_by,
           v.created_at, v.stage_changed_at
    FROM model_versions v JOIN models m ON m.id = v.model_id
"""
MODEL_SELECT = """
    SELECT m.id, m.name, m.created_by, m.created_at, m.updated_at,
           (SELECT count(*) FROM model_versions v WHERE v.model_id = m.id),
           (SELECT max(v.version) FROM model_versions v WHERE v.model_id = m.id),
           (SELECT v.version FROM model_versions v
             WHERE v.model_id = m.id AND v.stage = 'production'),
           m.note
    FROM models m
"""
EVENT_SELECT = """
    SELECT m.name, e.kind, e.version, e.alias, e.old_value, e.new_value, e.changed_by, e.at,
           e.reason
    FROM model_events e JOIN models m ON m.id = e.model_id
"""
SHOWN_NAMES = 20


def _listing(names: Sequence[object]) -> str:
    shown = ", ".join(str(n) for n in names[:SHOWN_NAMES]) or "none"
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


class SQLRegistry:
    """The :class:`~chachaml.store.registry_protocol.RegistryStore` methods of SQLStore."""

    if TYPE_CHECKING:  # provided by SQLStore

        async def _transact(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _query(self, body: Callable[[Tx], Awaitable[T]]) -> T: ...

        async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

        @staticmethod
        async def _require_run(db: Tx, run_id: str) -> str: ...

    # lookups inside a transaction or snapshot

    async def _model_id(self, db: Tx, name: str) -> int:
        found = await db.fetchall("SELECT id FROM models WHERE name = ?", (name,))
        if found:
            return int(found[0][0])
        known = await db.fetchall("SELECT name FROM models ORDER BY name")
        raise NotFound(
            f"model {name!r} not found (registered models: {_listing([k[0] for k in known])})"
        )

    async def _stage_of(self, db: Tx, model_id: int, name: str, version: int) -> str:
        found = await db.fetchall(
            "SELECT stage FROM model_versions WHERE model_id = ? AND version = ?",
            (model_id, version),
        )
        if found:
            stage: str = found[0][0]
            return stage
        versions = await db.fetchall(
            "SELECT version FROM model_versions WHERE model_id = ? ORDER BY version",
            (model_id,),
        )
        raise NotFound(
            f"model {name!r} has no version {version}"
            f" (its versions: {_listing([v[0] for v in versions])})"
        )

    async def _event(
        self,
        db: Tx,
        model_id: int,
        kind: str,
        version: int,
        old: str | None,
        new: str | None,
        user: str,
        *,
        alias: str | None = None,
        reason: str | None = None,
    ) -> None:
        await db.execute(
            "INSERT INTO model_events (model_id, kind, version, alias, old_value, new_value,"
            " changed_by, at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (model_id, kind, version, alias, old, new, user, time.time(), reason),
        )

    async def _touch(self, db: Tx, model_id: int) -> None:
        await db.execute("UPDATE models SET updated_at = ? WHERE id = ?", (time.time(), model_id))

    async def _set_stage(
        self,
        db: Tx,
        model_id: int,
        version: int,
        old: str | None,
        stage: str,
        user: str,
        reason: str | None,
    ) -> None:
        """Record a stage change; entering production first archives the current holder."""
        if stage == "production":
            holders = await db.fetchall(
                "SELECT version FROM model_versions"
                " WHERE model_id = ? AND stage = 'production' AND version != ?",
                (model_id, version),
            )
            for (previous,) in holders:
                await db.execute(
                    "UPDATE model_versions SET stage = 'archived', stage_changed_at = ?"
                    " WHERE model_id = ? AND version = ?",
                    (time.time(), model_id, previous),
                )
                await self._event(
                    db,
                    model_id,
                    "stage",
                    previous,
                    "production",
                    "archived",
                    user,
                    reason=f"version {version} was promoted to production",
                )
        await db.execute(
            "UPDATE model_versions SET stage = ?, stage_changed_at = ?"
            " WHERE model_id = ? AND version = ?",
            (stage, time.time(), model_id, version),
        )
        await self._event(db, model_id, "stage", version, old, stage, user, reason=reason)

    # reads

    async def _versions(self, db: Tx, where: str, params: Sequence[Any]) -> list[ModelVersion]:
        found = await db.fetchall(
            VERSION_SELECT + where + " ORDER BY v.model_id, v.version DESC", params
        )
        model_ids = sorted({r[0] for r in found})
        aliases: dict[tuple[int, int], list[str]] = {}
        tags: dict[tuple[int, int], dict[str, str]] = {}
        for mid in model_ids:
            for alias, version in await db.fetchall(
                "SELECT alias, version FROM model_aliases WHERE model_id = ? ORDER BY alias",
                (mid,),
            ):
                aliases.setdefault((mid, version), []).append(alias)
            for version, key, value in await db.fetchall(
                "SELECT version, key, value FROM model_version_tags WHERE model_id = ?",
                (mid,),
            ):
                tags.setdefault((mid, version), {})[key] = value
        metrics = await rows.latest_metrics(db, sorted({r[4] for r in found}))
        return [
            ModelVersion(
                model=r[1],
                version=r[2],
                stage=r[3],
                run_id=r[4],
                artifact=r[5],
                artifact_uri=r[6],
                sha256=r[7],
                serializer=r[8],
                content_type=r[9],
                size=r[10],
                description=r[11],
                created_by=r[12],
                created_at=to_datetime(r[13]),
                stage_changed_at=to_datetime(r[14]),
                aliases=aliases.get((r[0], r[2]), []),
                tags=tags.get((r[0], r[2]), {}),
                metrics=metrics[r[4]],
            )
            for r in found
        ]

    async def _models(
        self, db: Tx, where: str, params: Sequence[Any]
    ) -> list[tuple[Model, str | None]]:
        """Models with their aliases and tags, each with its note."""
        found = await db.fetchall(MODEL_SELECT + where + " ORDER BY m.updated_at DESC", params)
        out = []
        for r in found:
            alias_rows = await db.fetchall(
                "SELECT alias, version FROM model_aliases WHERE model_id = ? ORDER BY alias",
                (r[0],),
            )
            tag_rows = await db.fetchall(
                "SELECT key, value FROM model_tags WHERE model_id = ? ORDER BY key", (r[0],)
            )
            model = Model(
                name=r[1],
                created_by=r[2],
                created_at=to_datetime(r[3]),
                updated_at=to_datetime(r[4]),
                version_count=r[5],
                latest_version=r[6],
                production_version=r[7],
                aliases={a: v for a, v in alias_rows},
                tags={k: v for k, v in tag_rows},
            )
            out.append((model, r[8]))
        return out

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""

        async def body(db: Tx) -> list[Model]:
            return [model for model, _ in await self._models(db, "", ())]

        return await self._query(body)

    async def get_model(self, name: str) -> ModelDetail:
        """A model with versions, aliases, tags, note and audit trail."""

        async def body(db: Tx) -> ModelDetail:
            model_id = await self._model_id(db, name)
            ((model, note),) = await self._models(db, " WHERE m.id = ?", (model_id,))
            versions = await self._versions(db, " WHERE v.model_id = ?", (model_id,))
            events = await db.fetchall(
                EVENT_SELECT + " WHERE e.model_id = ? ORDER BY e.id", (model_id,)
            )
            history = [
                StageChange(
                    model=e[0],
                    kind=e[1],
                    version=e[2],
                    alias=e[3],
                    old=e[4],
                    new=e[5],
                    user=e[6],
                    at=to_datetime(e[7]),
                    reason=e[8],
                )
                for e in events
            ]
            return ModelDetail(**model.model_dump(), note=note, versions=versions, history=history)

        return await self._query(body)

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions, newest first (only one stage's if given)."""

        async def body(db: Tx) -> list[ModelVersion]:
            model_id = await self._model_id(db, name)
            if stage is None:
                return await self._versions(db, " WHERE v.model_id = ?", (model_id,))
            return await self._versions(
                db, " WHERE v.model_id = ? AND v.stage = ?", (model_id, stage)
            )

        return await self._query(body)

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""

        async def body(db: Tx) -> ModelVersion:
            model_id = await self._model_id(db, name)
            await self._stage_of(db, model_id, name, version)
            (found,) = await self._versions(
                db, " WHERE v.model_id = ? AND v.version = ?", (model_id, version)
            )
            return found

        return await self._query(body)

    # writes

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Register the next version of a model from an artifact of a run."""

        async def body(db: Tx) -> int:
            await self._require_run(db, new.run_id)
            ((archived,),) = await db.fetchall(
                "SELECT archived FROM runs WHERE id = ?", (new.run_id,)
            )
            if archived:
                raise Conflict(f"run {new.run_id!r} is archived; register a model from a live run")
            arts = await db.fetchall(
                "SELECT name, content_type, serializer, size, sha256, uri FROM artifacts"
                " WHERE run_id = ? ORDER BY name",
                (new.run_id,),
            )
            art = next((a for a in arts if a[0] == new.artifact), None)
            if art is None:
                raise NotFound(
                    f"run {new.run_id!r} has no artifact {new.artifact!r}"
                    f" (its artifacts: {_listing([a[0] for a in arts])})"
                )
            now = time.time()
            await db.execute(
                "INSERT INTO models (name, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (new.model, new.created_by, now, now),
            )
            model_id = await self._model_id(db, new.model)
            await self._touch(db, model_id)  # locks the model row until commit
            ((latest,),) = await db.fetchall(
                "SELECT max(version) FROM model_versions WHERE model_id = ?", (model_id,)
            )
            version = (latest or 0) + 1
            await db.execute(
                "INSERT INTO model_versions (model_id, version, run_id, artifact, artifact_uri,"
                " sha256, serializer, content_type, size, stage, description, created_by,"
                " created_at, stage_changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'none', ?, ?, ?, ?)",
                (
                    model_id,
                    version,
                    new.run_id,
                    art[0],
                    art[5],
                    art[4],
                    art[2],
                    art[1],
                    art[3],
                    new.description,
                    new.created_by,
                    now,
                    now,
                ),
            )
            await db.executemany(
                "INSERT INTO model_version_tags (model_id, version, key, value)"
                " VALUES (?, ?, ?, ?)",
                [(model_id, version, k, val) for k, val in new.tags.items()],
            )
            await self._set_stage(
                db, model_id, version, None, new.stage, new.created_by, "registered"
            )
            return version

        version = await self._transact(body)
        return await self.get_model_version(new.model, version)

    async def promote_model_version(
        self, name: str, version: int, stage: Stage, user: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to a stage; production archives the previous production version."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            current = await self._stage_of(db, model_id, name, version)
            if current == stage:
                return
            await self._set_stage(db, model_id, version, current, stage, user, reason)

        await self._transact(body)
        return await self.get_model_version(name, version)

    async def set_model_alias(self, name: str, alias: str, version: int, user: str) -> None:
        """Point an alias at a version."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await self._stage_of(db, model_id, name, version)
            found = await db.fetchall(
                "SELECT version FROM model_aliases WHERE model_id = ? AND alias = ?",
                (model_id, alias),
            )
            old = found[0][0] if found else None
            if old == version:
                return
            await db.execute(
                "INSERT INTO model_aliases (model_id, alias, version, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (model_id, alias) DO UPDATE SET"
                " version = excluded.version, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (model_id, alias, version, user, time.time()),
            )
            await self._event(
                db,
                model_id,
                "alias",
                version,
                None if old is None else str(old),
                str(version),
                user,
                alias=alias,
            )

        await self._transact(body)

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            found = await db.fetchall(
                "SELECT alias, version FROM model_aliases WHERE model_id = ? ORDER BY alias",
                (model_id,),
            )
            old = next((v for a, v in found if a == alias), None)
            if old is None:
                raise NotFound(
                    f"model {name!r} has no alias {alias!r}"
                    f" (its aliases: {_listing([a for a, _ in found])})"
                )
            await db.execute(
                "DELETE FROM model_aliases WHERE model_id = ? AND alias = ?", (model_id, alias)
            )
            await self._event(db, model_id, "alias", old, str(old), None, user, alias=alias)

        await self._transact(body)

    async def set_model_tags(self, name: str, tags: Mapping[str, str]) -> None:
        """Set tags on a model."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await db.executemany(
                "INSERT INTO model_tags (model_id, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (model_id, key) DO UPDATE SET value = excluded.value",
                [(model_id, k, val) for k, val in tags.items()],
            )

        await self._transact(body)

    async def set_model_version_tags(
        self, name: str, version: int, tags: Mapping[str, str]
    ) -> None:
        """Set tags on a model version."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await self._stage_of(db, model_id, name, version)
            await db.executemany(
                "INSERT INTO model_version_tags (model_id, version, key, value)"
                " VALUES (?, ?, ?, ?)"
                " ON CONFLICT (model_id, version, key) DO UPDATE SET value = excluded.value",
                [(model_id, version, k, val) for k, val in tags.items()],
            )

        await self._transact(body)

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace a model's markdown note."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await db.execute("UPDATE models SET note = ? WHERE id = ?", (note, model_id))

        await self._transact(body)
