"""The model registry: models, versions, stages, aliases, tags, notes and their history.

Every write is one transaction that first updates the model's row: that row lock makes
concurrent registrations and promotions of one model (even from other processes, on either
backend) run one after the other. The partial unique index ``model_versions_one_production``
backs the one-production-version rule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from chachaml.errors import Conflict, NotFound
from chachaml.records.events import (
    ModelAliasRemoved,
    ModelAliasSet,
    ModelStageChanged,
    ModelVersionRegistered,
)
from chachaml.records.registry import (
    Model,
    ModelDetail,
    ModelVersion,
    NewModelVersion,
    Stage,
    StageChange,
)
from chachaml.records.runs import to_datetime
from chachaml.store.sql.database import Database, Tx
from chachaml.store.sql.events import emit
from chachaml.store.sql.registry_rows import EVENT_SELECT, read_models, read_versions
from chachaml.store.sql.rows import require_run

SHOWN_NAMES = 20
MLFLOW_SERIALIZER = "mlflow"  # a version registered from an MLflow model location
MLFLOW_CONTENT_TYPE = "application/vnd.mlflow.model"
# what goes with a version, and with a model (children first)
VERSION_TABLES = ("model_aliases", "model_version_tags", "model_versions")
MODEL_TABLES = ("model_events", "model_tags", *VERSION_TABLES)


def _listing(names: Sequence[object]) -> str:
    shown = ", ".join(str(n) for n in names[:SHOWN_NAMES]) or "none"
    return shown + (f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else "")


class Registry:
    """Registered models, their versions, aliases, tags, notes and audit trail."""

    def __init__(self, database: Database) -> None:
        self._db = database

    # lookups inside a transaction or snapshot

    async def _model_id(self, db: Tx, name: str) -> int:
        found = await db.fetchall("SELECT id FROM models WHERE name = ?", (name,))
        if found:
            return int(found[0]["id"])
        known = await db.fetchall("SELECT name FROM models ORDER BY name")
        raise NotFound(
            f"model {name!r} not found (registered models: {_listing([k['name'] for k in known])})"
        )

    async def _stage_of(self, db: Tx, model_id: int, name: str, version: int) -> str:
        found = await db.fetchall(
            "SELECT stage FROM model_versions WHERE model_id = ? AND version = ?",
            (model_id, version),
        )
        if found:
            stage: str = found[0]["stage"]
            return stage
        versions = await db.fetchall(
            "SELECT version FROM model_versions WHERE model_id = ? ORDER BY version",
            (model_id,),
        )
        raise NotFound(
            f"model {name!r} has no version {version}"
            f" (its versions: {_listing([v['version'] for v in versions])})"
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

    async def _next_version(self, db: Tx, model_id: int) -> int:
        """One past the highest number ever given: a deleted version's audit events keep it."""
        (latest,) = await db.fetchall(
            "SELECT max(version) AS version FROM (SELECT version FROM model_versions"
            " WHERE model_id = ? UNION ALL SELECT version FROM model_events WHERE model_id = ?)"
            " AS given",
            (model_id, model_id),
        )
        return int(latest["version"] or 0) + 1

    async def _source_artifact(self, db: Tx, new: NewModelVersion) -> Any:
        """What a version copies: the run's artifact, or (``source``) an MLflow location."""
        if new.source is not None:
            return {
                "name": new.artifact,
                "uri": new.source,
                "sha256": "",
                "serializer": MLFLOW_SERIALIZER,
                "content_type": MLFLOW_CONTENT_TYPE,
                "size": 0,
            }
        arts = await db.fetchall(
            "SELECT name, content_type, serializer, size, sha256, uri FROM artifacts"
            " WHERE run_id = ? ORDER BY name",
            (new.run_id,),
        )
        art = next((a for a in arts if a["name"] == new.artifact), None)
        if art is None:
            raise NotFound(
                f"run {new.run_id!r} has no artifact {new.artifact!r}"
                f" (its artifacts: {_listing([a['name'] for a in arts])})"
            )
        return art

    async def _set_stage(
        self,
        db: Tx,
        model_id: int,
        version: int,
        old: str | None,
        stage: str,
        user: str,
        reason: str | None,
        name: str,
    ) -> None:
        """Record a stage change; entering production first archives the current holder.

        Emits ``model.stage_changed`` for each version whose stage changed (a registration's
        own first stage is in its ``model.registered`` event instead).
        """
        if stage == "production":
            holders = await db.fetchall(
                "SELECT version FROM model_versions"
                " WHERE model_id = ? AND stage = 'production' AND version != ?",
                (model_id, version),
            )
            for previous in [h["version"] for h in holders]:
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
                await emit(db, ModelStageChanged(
                    name=name, version=previous, from_stage="production", to_stage="archived",
                    user=user, reason=f"version {version} was promoted to production",
                ))  # fmt: skip
        await db.execute(
            "UPDATE model_versions SET stage = ?, stage_changed_at = ?"
            " WHERE model_id = ? AND version = ?",
            (stage, time.time(), model_id, version),
        )
        await self._event(db, model_id, "stage", version, old, stage, user, reason=reason)
        if old is not None:
            changed = ModelStageChanged(name=name, version=version, from_stage=old,
                                        to_stage=stage, user=user, reason=reason)  # fmt: skip
            await emit(db, changed)

    # reads

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""

        async def body(db: Tx) -> list[Model]:
            return [model for model, _ in await read_models(db, "", ())]

        return await self._db.query(body)

    async def get_model(self, name: str) -> ModelDetail:
        """A model with versions, aliases, tags, note and audit trail."""

        async def body(db: Tx) -> ModelDetail:
            model_id = await self._model_id(db, name)
            ((model, note),) = await read_models(db, " WHERE m.id = ?", (model_id,))
            versions = await read_versions(db, " WHERE v.model_id = ?", (model_id,))
            events = await db.fetchall(
                EVENT_SELECT + " WHERE e.model_id = ? ORDER BY e.id", (model_id,)
            )
            history = [
                StageChange(
                    model=e["model"],
                    kind=e["kind"],
                    version=e["version"],
                    alias=e["alias"],
                    old=e["old_value"],
                    new=e["new_value"],
                    user=e["changed_by"],
                    at=to_datetime(e["at"]),
                    reason=e["reason"],
                )
                for e in events
            ]
            return ModelDetail(**model.model_dump(), note=note, versions=versions, history=history)

        return await self._db.query(body)

    async def list_model_versions(
        self, name: str, stage: Stage | None = None
    ) -> list[ModelVersion]:
        """A model's versions, newest first (only one stage's if given)."""

        async def body(db: Tx) -> list[ModelVersion]:
            model_id = await self._model_id(db, name)
            if stage is None:
                return await read_versions(db, " WHERE v.model_id = ?", (model_id,))
            return await read_versions(
                db, " WHERE v.model_id = ? AND v.stage = ?", (model_id, stage)
            )

        return await self._db.query(body)

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""

        async def body(db: Tx) -> ModelVersion:
            model_id = await self._model_id(db, name)
            await self._stage_of(db, model_id, name, version)
            (found,) = await read_versions(
                db, " WHERE v.model_id = ? AND v.version = ?", (model_id, version)
            )
            return found

        return await self._db.query(body)

    # writes

    async def register_model_version(self, new: NewModelVersion) -> ModelVersion:
        """Register the next version of a model from an artifact of a run."""

        async def body(db: Tx) -> int:
            await require_run(db, new.run_id)
            (run,) = await db.fetchall("SELECT archived FROM runs WHERE id = ?", (new.run_id,))
            if run["archived"]:
                raise Conflict(f"run {new.run_id!r} is archived; register a model from a live run")
            art = await self._source_artifact(db, new)
            now = time.time()
            await db.execute(
                "INSERT INTO models (name, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (new.model, new.created_by, now, now),
            )
            model_id = await self._model_id(db, new.model)
            await self._touch(db, model_id)  # locks the model row until commit
            version = await self._next_version(db, model_id)
            await db.execute(
                "INSERT INTO model_versions (model_id, version, run_id, artifact, artifact_uri,"
                " sha256, serializer, content_type, size, stage, description, created_by,"
                " created_at, stage_changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'none', ?, ?, ?, ?)",
                (
                    model_id,
                    version,
                    new.run_id,
                    art["name"],
                    art["uri"],
                    art["sha256"],
                    art["serializer"],
                    art["content_type"],
                    art["size"],
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
            registered = ModelVersionRegistered(
                name=new.model, version=version, run_id=new.run_id, artifact=art["name"],
                stage=new.stage, user=new.created_by,
            )  # fmt: skip
            await emit(db, registered, at=now)
            await self._set_stage(
                db, model_id, version, None, new.stage, new.created_by, "registered", new.model
            )
            return version

        version = await self._db.transact(body)
        return await self.get_model_version(new.model, version)

    async def promote_model_version(
        self,
        name: str,
        version: int,
        stage: Stage,
        user: str,
        reason: str | None = None,
        archive_existing: bool = False,
    ) -> ModelVersion:
        """Move a version to a stage; production archives the previous production version.

        ``archive_existing`` archives the other versions in ``stage`` too (MLflow's
        ``archive_existing_versions``), each change audited.
        """

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            current = await self._stage_of(db, model_id, name, version)
            if archive_existing and stage != "archived":
                others = await db.fetchall(
                    "SELECT version FROM model_versions"
                    " WHERE model_id = ? AND stage = ? AND version != ? ORDER BY version",
                    (model_id, stage, version),
                )
                why = f"version {version} entered {stage}"
                for other in [o["version"] for o in others]:
                    await self._set_stage(db, model_id, other, stage, "archived", user, why, name)
            if current == stage:
                return
            await self._set_stage(db, model_id, version, current, stage, user, reason, name)

        await self._db.transact(body)
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
            old = found[0]["version"] if found else None
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
            moved = ModelAliasSet(name=name, alias=alias, version=version, previous=old, user=user)
            await emit(db, moved)

        await self._db.transact(body)

    async def delete_model_alias(self, name: str, alias: str, user: str) -> None:
        """Remove an alias."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            found = await db.fetchall(
                "SELECT alias, version FROM model_aliases WHERE model_id = ? ORDER BY alias",
                (model_id,),
            )
            old = next((f["version"] for f in found if f["alias"] == alias), None)
            if old is None:
                raise NotFound(
                    f"model {name!r} has no alias {alias!r}"
                    f" (its aliases: {_listing([f['alias'] for f in found])})"
                )
            await db.execute(
                "DELETE FROM model_aliases WHERE model_id = ? AND alias = ?", (model_id, alias)
            )
            await self._event(db, model_id, "alias", old, str(old), None, user, alias=alias)
            await emit(db, ModelAliasRemoved(name=name, alias=alias, version=old, user=user))

        await self._db.transact(body)

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

        await self._db.transact(body)

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

        await self._db.transact(body)

    async def set_model_note(self, name: str, note: str) -> None:
        """Replace a model's markdown note."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await db.execute("UPDATE models SET note = ? WHERE id = ?", (note, model_id))

        await self._db.transact(body)

    async def create_model(
        self, name: str, user: str, note: str | None = None, tags: Mapping[str, str] | None = None
    ) -> ModelDetail:
        """Create a model with no versions; ``Conflict`` if the name is taken."""

        async def body(db: Tx) -> None:
            now = time.time()
            added = await db.execute(
                "INSERT INTO models (name, note, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, note, user, now, now),
            )
            if not added:
                raise Conflict(f"model {name!r} already exists")
            model_id = await self._model_id(db, name)
            await db.executemany(
                "INSERT INTO model_tags (model_id, key, value) VALUES (?, ?, ?)",
                [(model_id, k, val) for k, val in (tags or {}).items()],
            )

        await self._db.transact(body)
        return await self.get_model(name)

    async def rename_model(self, name: str, new_name: str) -> None:
        """Rename a model; ``Conflict`` if the new name is taken."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            if new_name == name:
                return
            taken = await db.fetchall("SELECT id FROM models WHERE name = ?", (new_name,))
            if taken:
                raise Conflict(f"model {new_name!r} already exists")
            await db.execute("UPDATE models SET name = ? WHERE id = ?", (new_name, model_id))

        await self._db.transact(body)

    async def delete_model(self, name: str) -> None:
        """Delete a model and everything under it."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            for table in MODEL_TABLES:
                await db.execute(f"DELETE FROM {table} WHERE model_id = ?", (model_id,))
            await db.execute("DELETE FROM models WHERE id = ?", (model_id,))

        await self._db.transact(body)

    async def delete_model_tags(self, name: str, keys: Sequence[str]) -> None:
        """Delete tags of a model; keys it does not have are ignored."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await db.executemany(
                "DELETE FROM model_tags WHERE model_id = ? AND key = ?",
                [(model_id, k) for k in keys],
            )

        await self._db.transact(body)

    async def delete_model_version(self, name: str, version: int) -> None:
        """Delete a version with its aliases and tags; its audit events keep its number."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await self._stage_of(db, model_id, name, version)
            for table in VERSION_TABLES:
                await db.execute(
                    f"DELETE FROM {table} WHERE model_id = ? AND version = ?", (model_id, version)
                )

        await self._db.transact(body)

    async def set_model_version_description(
        self, name: str, version: int, description: str | None
    ) -> None:
        """Replace a version's description."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await self._stage_of(db, model_id, name, version)
            await db.execute(
                "UPDATE model_versions SET description = ? WHERE model_id = ? AND version = ?",
                (description, model_id, version),
            )

        await self._db.transact(body)

    async def delete_model_version_tags(self, name: str, version: int, keys: Sequence[str]) -> None:
        """Delete tags of a version; keys it does not have are ignored."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            await self._stage_of(db, model_id, name, version)
            await db.executemany(
                "DELETE FROM model_version_tags WHERE model_id = ? AND version = ? AND key = ?",
                [(model_id, version, k) for k in keys],
            )

        await self._db.transact(body)
