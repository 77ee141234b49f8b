"""Which ``SnapshotStore`` a room host uses, from plain-data configuration.

``spec`` is ``None`` or ``{"kind": "local"}`` (snapshots under ``<data_dir>/snapshots``, the
embedded default) or ``{"kind": "s3", "bucket": ..., "prefix": ..., "endpoint_url": ...,
"region": ...}`` (credentials from the usual AWS environment variables or files, as boto3
reads them). ``parse_snapshot_url`` turns ``local`` or ``s3://bucket/prefix`` into a spec.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from .snapshots import LocalDirSnapshotStore, SnapshotStore


def parse_snapshot_url(url: str | None, endpoint_url: str | None = None) -> dict | None:
    """``"local"``/None -> None; ``"s3://bucket/prefix"`` -> an S3 spec. Raises ``ValueError``
    for anything else."""
    if url in (None, "", "local"):
        return None
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"snapshot store must be 'local' or 's3://bucket/prefix', not {url!r}")
    prefix = parsed.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return {"kind": "s3", "bucket": parsed.netloc, "prefix": prefix, "endpoint_url": endpoint_url}


def snapshot_store_from_config(spec: dict | None, data_dir: str | Path) -> SnapshotStore:
    """The ``SnapshotStore`` described by ``spec`` (see the module docstring)."""
    if not spec or spec.get("kind", "local") == "local":
        return LocalDirSnapshotStore(Path(data_dir) / "snapshots")
    if spec["kind"] == "s3":
        from .s3_snapshots import S3SnapshotStore

        kwargs = {k: spec[k] for k in ("prefix", "endpoint_url", "region") if spec.get(k) is not None}
        extra = {k: spec[k] for k in ("aws_access_key_id", "aws_secret_access_key") if spec.get(k)}
        return S3SnapshotStore(spec["bucket"], **kwargs, **extra)
    raise ValueError(f"unknown snapshot store kind {spec['kind']!r}")
