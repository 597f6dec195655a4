"""The registry's rows as records: the SELECTs and the reads every registry query shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chachaml.records.registry import Model, ModelVersion
from chachaml.records.runs import to_datetime
from chachaml.store.sql.database import Tx
from chachaml.store.sql.metrics import latest_metrics

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


async def read_versions(db: Tx, where: str, params: Sequence[Any]) -> list[ModelVersion]:
    """Versions (with aliases, tags and their runs' latest metrics) matching ``where``."""
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


async def read_models(db: Tx, where: str, params: Sequence[Any]) -> list[tuple[Model, str | None]]:
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
