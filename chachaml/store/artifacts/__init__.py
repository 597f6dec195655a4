"""Artifact storage: content-addressed objects in a local folder or an S3-compatible bucket.

:mod:`protocol` is the contract and the object naming every artifact store shares,
:mod:`local` and :mod:`s3` the two stores, :mod:`transfer` copies a local root into another
store. :mod:`serializers` and :mod:`skops` turn values into an artifact's bytes and back:
they live here because they define what an artifact's bytes are, beside the stores that
keep them, and nothing but artifacts uses them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chachaml.errors import InvalidInput
from chachaml.store.artifacts.local import LocalArtifactStore
from chachaml.store.artifacts.protocol import (
    CHUNK,
    MAX_NAME,
    ArtifactStore,
    DeletableObjects,
    StoredObject,
    UriReferences,
    corrupt_object,
    object_uri,
    sweep_unused,
    uri_digest,
    validate_artifact_name,
    verified,
)

if TYPE_CHECKING:
    from chachaml.settings import S3Settings


def open_artifact_store(root: str, s3: S3Settings | None = None) -> ArtifactStore:
    """The artifact store a root names: ``s3://bucket/prefix`` or a local folder.

    The S3 client library is imported only here, when an ``s3://`` root is opened.
    """
    if root.startswith("s3://"):
        from chachaml.store.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(root, s3)
    if "://" in root and not root.startswith("file://"):
        raise InvalidInput(
            f"unsupported artifact root {root!r}; use a local folder path or s3://bucket/prefix"
        )
    return LocalArtifactStore(root.removeprefix("file://"))


__all__ = [
    "CHUNK",
    "MAX_NAME",
    "ArtifactStore",
    "DeletableObjects",
    "LocalArtifactStore",
    "StoredObject",
    "UriReferences",
    "corrupt_object",
    "object_uri",
    "open_artifact_store",
    "sweep_unused",
    "uri_digest",
    "validate_artifact_name",
    "verified",
]
