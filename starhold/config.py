"""Settings of a Starhold process, from defaults, ``STARHOLD_*`` environment variables and
command-line flags (in that order of precedence, lowest first)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

__all__ = ["Settings"]


@dataclass
class Settings:
    """``host``/``port``: where the gateway listens (loopback by default); ``data_dir``: SQLite
    files under ``rooms/`` and snapshots under ``snapshots/``, always absolute (resolved against
    the working directory when the settings are made), since the room actors use it as is on
    every node (with S3 snapshots their files go to a per-node directory below it, or to the
    node's ``$STARHOLD_NODE_DATA_DIR``: ``starhold._runtime.paths.node_data_dir``);
    ``idle_timeout``: seconds a room
    with nobody present stays awake; ``ray_address``: None starts a local Ray; ``namespace``:
    the Ray namespace of the room hosts; ``host_mode``: ``ray`` (rooms in room host actors) or
    ``local`` (rooms in the gateway process, for development); ``rooms_per_host``: rooms one
    room host actor process runs at most (1: a process per room); ``spare_hosts``: empty
    hosts kept started for waking rooms (``starhold._runtime.host_pool``); ``snapshots``: ``local``
    (``<data_dir>/snapshots``) or ``s3://bucket/prefix`` with ``s3_endpoint`` for an S3
    service other than AWS (credentials from the AWS environment variables); ``jwt_keys``:
    token signing keys ``"kid:base64,..."`` (first = active; see ``gateway/auth.py``), default a
    generated key kept in the snapshot bucket (``<prefix>_cluster/jwt-keys.json``) with S3
    snapshots, else in a key file under ``data_dir``; ``session_key``: base64 key signing game
    ids (default a generated key shared the same way, ``session-key.json``); ``gateways``: gateway processes sharing the port (``SO_REUSEPORT``);
    ``log_format``: ``text`` or ``json`` (one JSON object per line, with room and connection
    ids); ``metrics_port``: when set, gateway process ``i`` also serves its own ``/metrics`` on
    ``host:metrics_port + i`` (the shared port reaches one gateway at random, so a scraper
    should scrape each process there); ``shed_lag``: seconds of event-loop lag, sustained for a
    second, at which a gateway process refuses new players (``gateway/admission.py``; 0 turns
    admission control off, the rooms' tick overruns included);
    ``games_per_hour`` / ``live_games``: games a player may create per rolling hour / have
    awake at once (``rooms/session/quotas.py``; 0 unlimited); ``login_account_failures`` /
    ``login_address_failures``: failed logins in a row per account / per client address before
    lockouts start (``rooms/accounts/throttle.py``; 0 off); ``shutdown_timeout``: seconds ``starhold
    serve`` gives its server to shut down on SIGTERM or Ctrl-C before killing it
    (``starhold/supervise.py``); ``rooms``: the modules of room kinds to host, comma-separated
    dotted names (``starhold serve --rooms``, ``STARHOLD_ROOMS``), default the ``starhold.rooms``
    entry point group (``starhold.kinds.load_rooms``). Gateways, room actors and the alarm
    scheduler all load the same modules (``room_config()["rooms"]``); ``colocate``: the
    gateways hand each WebSocket of a room awake on their node to the room's host process,
    which serves it (``gateway/colocate.py``; on by default, ``STARHOLD_COLOCATE=0`` or
    ``--no-colocate`` turns it off; Ray mode only)."""

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = field(default_factory=lambda: Path("data"))
    idle_timeout: float = 10.0
    ray_address: str | None = None
    namespace: str = "starhold"
    host_mode: str = "ray"
    log_level: str = "INFO"
    snapshots: str = "local"
    s3_endpoint: str | None = None
    jwt_keys: str | None = None
    session_key: str | None = None
    gateways: int = 1
    log_format: str = "text"
    metrics_port: int | None = None
    shed_lag: float = 0.05
    games_per_hour: int = 20
    live_games: int = 3
    login_account_failures: int = 5
    login_address_failures: int = 20
    shutdown_timeout: float = 10.0
    rooms: str | None = None
    rooms_per_host: int = 10
    spare_hosts: int = 2
    colocate: bool = True

    def __post_init__(self):
        self.data_dir = Path(self.data_dir).resolve()

    @classmethod
    def from_env(cls, environ=os.environ, **overrides) -> "Settings":
        """Defaults, then ``STARHOLD_<FIELD>`` variables, then non-None ``overrides``."""
        settings = cls()
        for f in fields(cls):
            raw = environ.get(f"STARHOLD_{f.name.upper()}")
            if raw is not None:
                setattr(settings, f.name, _convert(f.name, raw))
        for name, value in overrides.items():
            if value is not None:
                setattr(settings, name, _convert(name, value))
        settings.data_dir = Path(settings.data_dir).resolve()
        return settings

    def room_modules(self) -> list[str] | None:
        """``rooms`` as a list of module names, or None for the entry point group. Raises
        ``ValueError`` for a list with no module in it."""
        if self.rooms is None:
            return None
        modules = [name.strip() for name in self.rooms.split(",") if name.strip()]
        if not modules:
            raise ValueError("--rooms names no module")
        return modules

    def route_options(self) -> dict:
        """The options given to the HTTP route functions of room kinds
        (``starhold.http.GatewayAPI.options``): the game's settings."""
        return {"session_key": self.session_key, "games_per_hour": self.games_per_hour,
                "live_games": self.live_games, "login_account_failures": self.login_account_failures,
                "login_address_failures": self.login_address_failures}

    def room_config(self) -> dict:
        """The plain-data config handed to room hosts (Ray actors): ``rooms`` is
        ``room_modules()``, which every host loads."""
        from .storage.factory import parse_snapshot_url

        return {"data_dir": str(self.data_dir), "idle_timeout": self.idle_timeout, "log_level": self.log_level,
                "snapshots": parse_snapshot_url(self.snapshots, self.s3_endpoint), "rooms": self.room_modules(),
                "rooms_per_host": self.rooms_per_host, "spare_hosts": self.spare_hosts}


def _convert(name: str, value):
    if name in ("port", "gateways", "metrics_port", "games_per_hour", "live_games", "login_account_failures",
                "login_address_failures", "rooms_per_host", "spare_hosts"):
        return int(value)
    if name in ("idle_timeout", "shed_lag", "shutdown_timeout"):
        return float(value)
    if name == "data_dir":
        return Path(value)
    if name == "colocate":
        return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")
    return value
