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
from chachaml.store.sql.metrics import latest_metrics
from chachaml.store.sql.rows import require_run

VERSION_SELECT = """
    SELECT v.model_id, m.name AS model, v.version, v.stage, v.run_id, v.artifact, v.artifact_uri,
           v.sha256, v.serializer, v.content_type, v.size, v.description, v.created_by,
           v.created_at, v.stage_changed_at
    FROM model_versions v JOIN models m ON m.id = v.model_id
"""
MODEL_SELECT = """
    SELECT m.id, m.name, m.created_by, m.created_at, m.updated_at,
           (SELECT count(*) FROM model_versions v WHERE v.model_id = m.id) AS version_count,
           (SELECT max(v.version) FROM model_versions v WHERE v.model_id = m.id)
             AS latest_version,
           (SELECT v.version FROM model_versions v
             WHERE v.model_id = m.id AND v.stage = 'production') AS production_version,
           m.note
    FROM models m
"""
EVENT_SELECT = """
    SELECT m.name AS model, e.kind, e.version, e.alias, e.old_value, e.new_value, e.changed_by,
           e.at, e.reason
    FROM model_events e JOIN models m ON m.id = e.model_id
"""
# the columns of VERSION_SELECT that a ModelVersion takes as they are
VERSION_COLUMNS = (
    "model",
    "version",
    "stage",
    "run_id",
    "artifact",
    "artifact_uri",
    "sha256",
    "serializer",
    "content_type",
    "size",
    "description",
    "created_by",
)
SHOWN_NAMES = 20


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

    async def _versions(self, db: Tx, where: str, params: Sequence[Any]) -> list[ModelVersion]:
        found = await db.fetchall(
            VERSION_SELECT + where + " ORDER BY v.model_id, v.version DESC", params
        )
        model_ids = sorted({r["model_id"] for r in found})
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
        metrics = await latest_metrics(db, sorted({r["run_id"] for r in found}))
        return [
            ModelVersion(
                **{c: r[c] for c in VERSION_COLUMNS},
                created_at=to_datetime(r["created_at"]),
                stage_changed_at=to_datetime(r["stage_changed_at"]),
                aliases=aliases.get((r["model_id"], r["version"]), []),
                tags=tags.get((r["model_id"], r["version"]), {}),
                metrics=metrics[r["run_id"]],
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
                (r["id"],),
            )
            tag_rows = await db.fetchall(
                "SELECT key, value FROM model_tags WHERE model_id = ? ORDER BY key", (r["id"],)
            )
            model = Model(
                name=r["name"],
                created_by=r["created_by"],
                created_at=to_datetime(r["created_at"]),
                updated_at=to_datetime(r["updated_at"]),
                version_count=r["version_count"],
                latest_version=r["latest_version"],
                production_version=r["production_version"],
                aliases={a["alias"]: a["version"] for a in alias_rows},
                tags={t["key"]: t["value"] for t in tag_rows},
            )
            out.append((model, r["note"]))
        return out

    async def list_models(self) -> list[Model]:
        """Every model, most recently updated first."""

        async def body(db: Tx) -> list[Model]:
            return [model for model, _ in await self._models(db, "", ())]

        return await self._db.query(body)

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
                return await self._versions(db, " WHERE v.model_id = ?", (model_id,))
            return await self._versions(
                db, " WHERE v.model_id = ? AND v.stage = ?", (model_id, stage)
            )

        return await self._db.query(body)

    async def get_model_version(self, name: str, version: int) -> ModelVersion:
        """One version of a model."""

        async def body(db: Tx) -> ModelVersion:
            model_id = await self._model_id(db, name)
            await self._stage_of(db, model_id, name, version)
            (found,) = await self._versions(
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
            now = time.time()
            await db.execute(
                "INSERT INTO models (name, created_by, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (new.model, new.created_by, now, now),
            )
            model_id = await self._model_id(db, new.model)
            await self._touch(db, model_id)  # locks the model row until commit
            (latest,) = await db.fetchall(
                "SELECT max(version) AS version FROM model_versions WHERE model_id = ?",
                (model_id,),
            )
            version = (latest["version"] or 0) + 1
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
        self, name: str, version: int, stage: Stage, user: str, reason: str | None = None
    ) -> ModelVersion:
        """Move a version to a stage; production archives the previous production version."""

        async def body(db: Tx) -> None:
            model_id = await self._model_id(db, name)
            await self._touch(db, model_id)  # locks the model row until commit
            current = await self._stage_of(db, model_id, name, version)
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
