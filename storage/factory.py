"""Which ``SnapshotStore`` a room host uses, from plain-data configuration.

``spec`` is ``None`` or ``{"kind": "local"}`` (snapshots under ``<data_dir>/snapshots``, the
embedded default) or ``{"kind": "s3", "bucket": ..., "prefix": ..., "endpoint_url": ...,
"region": ..., "aws_access_key_id": ..., "aws_secret_access_key": ...}`` (all but ``bucket``
optional; without the two keys, credentials come from the usual AWS environment variables or
files, as boto3 reads them). ``parse_snapshot_url`` turns ``local`` or ``s3://bucket/prefix``
into a spec; ``snapshot_spec`` turns an ``S3SnapshotStore`` (e.g. the ``s3_store`` fixture)
back into one.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from .snapshots import LocalDirSnapshotStore, SnapshotStore

__all__ = ["parse_snapshot_url", "snapshot_spec", "snapshot_store_from_config"]

_CREDENTIALS = ("aws_access_key_id", "aws_secret_access_key")


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
        extra = {k: spec[k] for k in _CREDENTIALS if spec.get(k)}
        return S3SnapshotStore(spec["bucket"], **kwargs, **extra)
    raise ValueError(f"unknown snapshot store kind {spec['kind']!r}")


def snapshot_spec(store: SnapshotStore) -> dict:
    """The spec from which ``snapshot_store_from_config`` builds a store on the same bucket and
    prefix as ``store``, an ``S3SnapshotStore``: ``{"kind": "s3", "bucket", "prefix",
    "endpoint_url", "region"}``, plus ``aws_access_key_id``/``aws_secret_access_key`` when the
    store was given them (other client options are not carried). Plain data: it can travel to
    a Ray actor (``RoomHarness(..., host="ray", snapshots=spec)``).

    Raises ``ValueError`` for an S3 store built around a ready boto3 ``client`` (its
    credentials are unknown) and ``TypeError`` for any other store (a local store is tied to a
    directory of this machine: use ``None``, snapshots under each host's ``data_dir``)."""
    from .s3_snapshots import S3SnapshotStore

    if not isinstance(store, S3SnapshotStore):
        raise TypeError(f"no snapshot spec for {store!r}: only an S3SnapshotStore has one")
    if not store._owns_client:
        raise ValueError(f"{store!r} was built around a ready client: its credentials are unknown")
    spec = {"kind": "s3", "bucket": store.bucket, "prefix": store.prefix, "endpoint_url": store.endpoint_url,
            "region": store.region}
    spec.update({k: store._client_kwargs[k] for k in _CREDENTIALS if store._client_kwargs.get(k)})
    return spec
