"""The ``starhold`` command: ``starhold serve`` runs the server (local Ray by default),
``starhold gateway`` runs gateways that join an existing Ray cluster, ``starhold bots`` flies
bots."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from . import supervise
from .config import Settings
from .logs import configure_logging

log = logging.getLogger("starhold.gateway")

AFFINITY_ENV = "STARHOLD_ROOM_AFFINITY"
"""``STARHOLD_ROOM_AFFINITY=0``: several gateway processes serve each socket where the kernel
put it, without handing rooms' sockets to their home process (``gateway/affinity.py``)."""


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(host=args.host, port=args.port, data_dir=args.data_dir,
                                 idle_timeout=args.idle_timeout, ray_address=args.ray_address,
                                 host_mode=args.host_mode, snapshots=args.snapshots, s3_endpoint=args.s3_endpoint,
                                 gateways=args.gateways, log_format=args.log_format,
                                 metrics_port=args.metrics_port, shed_lag=args.shed_lag,
                                 games_per_hour=args.games_per_hour, live_games=args.live_games,
                                 login_account_failures=args.login_account_failures,
                                 login_address_failures=args.login_address_failures,
                                 shutdown_timeout=args.shutdown_timeout, rooms=args.rooms,
                                 rooms_per_host=args.rooms_per_host, spare_hosts=args.spare_hosts,
                                 colocate=args.colocate)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(args.log_level, settings.log_format)
    if settings.gateways < 1:
        sys.exit("--gateways must be at least 1")
    if settings.rooms_per_host < 1 or settings.spare_hosts < 0:
        sys.exit("--rooms-per-host must be at least 1 and --spare-hosts at least 0")
    try:
        settings.room_modules()
    except ValueError as exc:
        sys.exit(str(exc))
    if settings.host_mode != "ray" and settings.gateways > 1:
        sys.exit("--gateways > 1 needs --host-mode ray (in-process rooms live in one gateway)")
    if not supervise.is_child():  # the server runs in a session of its own (starhold/supervise.py)
        return supervise.supervise(args.argv, settings.shutdown_timeout)
    if settings.host_mode == "ray":
        if not settings.ray_address:
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1 only
        from ._runtime.ray_host import init_ray

        print(f"starting Ray ({settings.ray_address or 'local'})...", flush=True)
        dashboard = {} if args.no_dashboard else {"include_dashboard": True, "dashboard_host": "127.0.0.1"}
        init_ray(settings.ray_address, settings.namespace, **dashboard)
        import ray

        gcs = ray.get_runtime_context().gcs_address
        print(f"Ray cluster at {gcs}, room actors in namespace {settings.namespace!r}", flush=True)
        settings.ray_address = settings.ray_address or gcs
    children = _spawn_gateways(settings, args.log_level, hibernate_rooms=True)

    def stop_children() -> None:
        _stop(children, settings.shutdown_timeout)

    try:
        _run_gateway(settings, 0, stop_children)
    finally:
        stop_children()
        if settings.host_mode == "ray":
            import ray

            ray.shutdown()
    return 0


def _gateway_process(settings: Settings, log_level: str, index: int, hibernate_rooms: bool = True) -> None:
    """Entry point of the extra gateway processes of ``--gateways N`` (spawned; they inherit the
    parent's environment: Ray's settings and token, the AWS variables)."""
    configure_logging(log_level, settings.log_format)
    from ._runtime.ray_host import init_ray

    init_ray(settings.ray_address, settings.namespace)
    try:
        _run_gateway(settings, index, hibernate_rooms=hibernate_rooms)
    except KeyboardInterrupt:
        pass


def _add_host_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rooms-per-host", type=int,
                        help="rooms one room host process runs at most (default 10; 1 = a process per room)")
    parser.add_argument("--spare-hosts", type=int,
                        help="empty room hosts kept started so that waking rooms start at once (default 2)")
    parser.add_argument("--colocate", action=argparse.BooleanOptionalAction, default=None,
                        help="hand each WebSocket of a room awake on this node to the room's host process, "
                             "which serves it (gateway/colocate.py; default: on; --no-colocate: every "
                             "socket stays in the gateway processes)")


def _gateway(args: argparse.Namespace) -> int:
    """``starhold gateway``: gateway processes joining the Ray cluster at ``--ray-address``
    (required); no Ray of its own, no rooms in-process, and the rooms are left running when it
    stops (other gateways serve them). Exits with a message (status 1) when Ray refuses the
    connection (token authentication: ``ray_host.AUTH_HELP``) or cannot be reached."""
    settings = Settings.from_env(host=args.host, port=args.port, data_dir=args.data_dir,
                                 idle_timeout=args.idle_timeout, ray_address=args.ray_address,
                                 snapshots=args.snapshots, s3_endpoint=args.s3_endpoint,
                                 gateways=args.gateways, log_format=args.log_format,
                                 metrics_port=args.metrics_port, shed_lag=args.shed_lag,
                                 games_per_hour=args.games_per_hour, live_games=args.live_games,
                                 login_account_failures=args.login_account_failures,
                                 login_address_failures=args.login_address_failures, rooms=args.rooms,
                                 rooms_per_host=args.rooms_per_host, spare_hosts=args.spare_hosts,
                                 colocate=args.colocate)
    settings.host_mode = "ray"
    if not settings.ray_address:
        sys.exit("starhold gateway needs --ray-address (or STARHOLD_RAY_ADDRESS): the Ray cluster to join, "
                 "host:port of its GCS (`ray start --head --port`); `starhold serve` runs a server of its own")
    if settings.gateways < 1:
        sys.exit("--gateways must be at least 1")
    if settings.rooms_per_host < 1 or settings.spare_hosts < 0:
        sys.exit("--rooms-per-host must be at least 1 and --spare-hosts at least 0")
    try:
        settings.room_modules()
        settings.room_config()
    except ValueError as exc:
        sys.exit(str(exc))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    configure_logging(args.log_level, settings.log_format)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ._runtime.ray_host import RayConnectError, check_ray_address, init_ray

    print(f"joining the Ray cluster at {settings.ray_address}...", flush=True)
    try:
        check_ray_address(settings.ray_address)
        init_ray(settings.ray_address, settings.namespace, logging_level="WARNING")
    except RayConnectError as exc:
        sys.exit(f"starhold gateway: {exc}")
    except ConnectionError as exc:  # ray.init's own, after the GCS answered the check
        sys.exit(f"starhold gateway: Ray at {settings.ray_address} could not be joined: {exc} "
                 "(the gateway must run on a node of the cluster: `ray start --address=...` there first)")
    children = _spawn_gateways(settings, args.log_level, hibernate_rooms=False)
    try:
        _run_gateway(settings, 0, lambda: _stop(children, settings.shutdown_timeout), hibernate_rooms=False)
    finally:
        _stop(children, settings.shutdown_timeout)
        import ray

        ray.shutdown()  # disconnects this driver; the cluster, its rooms and the scheduler run on
    return 0


def _spawn_gateways(settings: Settings, log_level: str, hibernate_rooms: bool) -> list:
    """Start gateway processes 1..N-1 of ``--gateways N`` (spawned, daemonic)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    children = []
    for i in range(1, settings.gateways):
        child = ctx.Process(target=_gateway_process, args=(settings, log_level, i, hibernate_rooms), daemon=True,
                            name=f"starhold-gateway-{i}")
        child.start()
        children.append(child)
    return children


def _stop(children: list, timeout: float) -> None:
    """SIGTERM gateway processes (they close their sockets with 1001) and wait for them."""
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout)


def _run_gateway(settings: Settings, index: int, stop_others=None, hibernate_rooms: bool = True) -> None:
    """Serve one gateway process on ``settings.host:port`` (``SO_REUSEPORT`` when several
    processes share the port: the kernel spreads connections over them) until SIGTERM or
    SIGINT. Shutdown: close the sockets with 1001, call ``stop_others()`` (gateway 0: stop the
    other gateway processes) in a thread, then, if ``hibernate_rooms``, hibernate the rooms
    (``starhold serve``; a ``starhold gateway`` leaves them to the cluster's other gateways)."""
    from aiohttp import web

    from . import heap
    from .gateway.app import GATEWAY
    from .gateway.colocate import HostRouter, build_app, gateway_config
    from .gateway.metrics import start_metrics_site

    if settings.host_mode == "ray":
        from ._runtime.ray_host import RayDirectory

        directory = RayDirectory(settings.room_config(), settings.namespace)
    else:
        from ._runtime.local_host import InProcessDirectory
        from .storage.factory import snapshot_store_from_config

        directory = InProcessDirectory(settings.data_dir, idle_timeout=settings.idle_timeout,
                                       snapshots=snapshot_store_from_config(settings.room_config()["snapshots"],
                                                                            settings.data_dir))
    app = build_app(directory, gateway_config(settings))
    if settings.colocate and settings.host_mode == "ray":
        app[GATEWAY].hosts = HostRouter(directory, gateway_config(settings))

    async def settle(app: web.Application) -> None:
        heap.settle()  # the galaxy, the app and the imports live as long as the process

    handoff = None
    if settings.gateways > 1 and os.environ.get(AFFINITY_ENV, "1") != "0":
        from .gateway.affinity import Handoff, handoff_dir

        handoff = Handoff(index, settings.gateways, handoff_dir(os.getpid() if index == 0 else os.getppid()))

    async def start_affinity(app: web.Application) -> None:
        try:
            await handoff.start(app[GATEWAY])
        except OSError as exc:  # the directory is not ours, or no Unix sockets: serve without affinity
            log.warning("gateway %d: no room affinity (%s)", index, exc)
        else:
            app[GATEWAY].handoff = handoff

    async def stop_handoffs(app: web.Application) -> None:
        handoff.stop_listening()  # before the gateway closes its sockets (1001)

    async def stop_affinity(app: web.Application) -> None:
        await handoff.close()

    def announce(_aiohttp_banner: str) -> None:  # run_app calls it once the port listens
        if index == 0:
            print(f"Starhold is up: http://{settings.host}:{settings.port}/  (data in {settings.data_dir}, "
                  f"rooms on {settings.host_mode}, {settings.gateways} gateway process(es)"
                  f"{'' if hibernate_rooms else ', joined ' + str(settings.ray_address)})", flush=True)

    async def close_directory(app: web.Application) -> None:
        if hibernate_rooms:
            await directory.close()
        else:
            await directory.close(hibernate_rooms=False)

    async def serve_own_metrics(app: web.Application) -> None:
        if settings.metrics_port is not None:
            await start_metrics_site(settings.host, settings.metrics_port + index, app[GATEWAY].host_metrics)

    async def close_host_sockets(app: web.Application) -> None:
        # The hosts' sockets close with 1001 as the gateway's own do, before the rooms hibernate
        # (else they would live until Ray ends their process: 1006).
        hosts = app[GATEWAY].hosts
        if hosts is not None:
            await hosts.close_sockets()

    async def stop_other_gateways(app: web.Application) -> None:
        if stop_others is not None:  # before the rooms hibernate, so no other gateway wakes them
            await asyncio.to_thread(stop_others)

    app.on_startup.append(settle)
    if handoff is not None:
        app.on_startup.append(start_affinity)
        app.on_cleanup.append(stop_affinity)
    app.on_startup.append(serve_own_metrics)
    if hibernate_rooms:
        app.on_shutdown.append(close_host_sockets)
    app.on_shutdown.append(stop_other_gateways)
    if handoff is not None:
        app.on_shutdown.insert(0, stop_handoffs)
    app.on_cleanup.append(close_directory)
    try:  # uvloop: libuv's event loop, markedly cheaper per socket operation than asyncio's
        import uvloop
    except ImportError:  # pragma: no cover - it is a dependency; stay runnable without it
        loop = None
    else:
        loop = uvloop.new_event_loop()
    web.run_app(app, host=settings.host, port=settings.port, print=announce, shutdown_timeout=5,
                reuse_port=settings.gateways > 1, handle_signals=True, loop=loop)


def _bots(args: argparse.Namespace) -> int:
    from .client.bots import run_bots

    trips = asyncio.run(run_bots(args.url, args.system, args.count, args.duration, args.seed))
    print(f"{args.count} bots completed {trips} trips in {args.system}")
    return 0


def _loadtest(args: argparse.Namespace) -> int:
    from .client.loadtest import main as loadtest_main

    return loadtest_main(args)


def _add_gateway_parser(sub) -> None:
    """The ``starhold gateway`` subcommand's flags (those of ``serve`` that a gateway uses)."""
    gateway = sub.add_parser(
        "gateway", help="run gateway processes that join an existing Ray cluster (no local Ray, no rooms)",
        description="Join the Ray cluster at --ray-address and serve players there; run any number of these, "
                    "on any node of the cluster, behind a load balancer that checks GET /healthz. Give every "
                    "gateway the same --snapshots, --data-dir, --idle-timeout and --rooms. Against a cluster "
                    "with token authentication set RAY_AUTH_MODE=token and the token (RAY_AUTH_TOKEN, "
                    "RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token).")
    gateway.add_argument("--ray-address", help="host:port of the Ray cluster's GCS (required)")
    gateway.add_argument("--host", help="listen address (default 127.0.0.1)")
    gateway.add_argument("--port", type=int, help="listen port (default 8000)")
    gateway.add_argument("--gateways", type=int, help="gateway processes sharing the port (default 1)")
    gateway.add_argument("--data-dir", help="key files (with local snapshots) and the room actors' data dir "
                                            "(default ./data, made absolute)")
    gateway.add_argument("--snapshots", help="local (default) or s3://bucket/prefix; with S3 the token keys, the "
                                             "game-id key and the alarm index live in the bucket")
    gateway.add_argument("--s3-endpoint", help="S3 endpoint URL for a non-AWS S3 service (e.g. SeaweedFS)")
    gateway.add_argument("--idle-timeout", type=float, help="seconds before an empty room hibernates (default 10)")
    gateway.add_argument("--rooms", metavar="MODULE[,MODULE...]", help="modules of room kinds to host")
    gateway.add_argument("--log-format", choices=["text", "json"], help="log lines as text (default) or JSON")
    _add_host_arguments(gateway)
    gateway.add_argument("--metrics-port", type=int,
                         help="gateway process i also serves its own /metrics on this port + i (default: off)")
    gateway.add_argument("--shed-lag", type=float, help="as for serve (default 0.05; 0 = off)")
    gateway.add_argument("--games-per-hour", type=int, help="as for serve (default 20, 0 = unlimited)")
    gateway.add_argument("--live-games", type=int, help="as for serve (default 3, 0 = unlimited)")
    gateway.add_argument("--login-account-failures", type=int, help="as for serve (default 5, 0 = off)")
    gateway.add_argument("--login-address-failures", type=int, help="as for serve (default 20, 0 = off)")
    gateway.set_defaults(func=_gateway)
def _drain(args: argparse.Namespace) -> int:
    """``starhold drain NODE``: see ``starhold.drain``. Exit status 0 when every room moved,
    1 when some failed or are left on the node, 2 when the drain could not start."""
    address = args.ray_address or os.environ.get("RAY_ADDRESS")
    if not address:
        sys.exit("starhold drain: give --ray-address (or RAY_ADDRESS): the GCS address of the cluster, "
                 "e.g. 10.0.0.1:6379 (`ray status` prints it)")
    if args.parallel < 1:
        sys.exit("--parallel must be at least 1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ._runtime.ray_host import init_ray
    from .drain import DrainError, drain_node

    init_ray(address, args.namespace, logging_level="WARNING")
    try:
        report = asyncio.run(drain_node(args.node, namespace=args.namespace, deadline=args.deadline,
                                        parallel=args.parallel))
    except DrainError as exc:
        print(f"starhold drain: {exc}", file=sys.stderr)
        return 2
    return 0 if report.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="starhold", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway and the rooms (local Ray by default)")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8000)")
    serve.add_argument("--data-dir", help="SQLite files and snapshots (default ./data)")
    serve.add_argument("--idle-timeout", type=float, help="seconds before an empty room hibernates (default 10)")
    serve.add_argument("--ray-address", help="an existing Ray cluster (default: start a local one)")
    serve.add_argument("--host-mode", choices=["ray", "local"], help="rooms as Ray actors (default) or in-process")
    serve.add_argument("--snapshots", help="where snapshots go: local (default) or s3://bucket/prefix")
    serve.add_argument("--s3-endpoint", help="S3 endpoint URL for a non-AWS S3 service (e.g. SeaweedFS)")
    serve.add_argument("--gateways", type=int, help="gateway processes sharing the port (default 1; Ray mode)")
    serve.add_argument("--log-format", choices=["text", "json"], help="log lines as text (default) or JSON")
    serve.add_argument("--metrics-port", type=int,
                       help="gateway process i also serves its own /metrics on this port + i (default: off)")
    serve.add_argument("--shed-lag", type=float,
                       help="seconds of sustained event-loop lag at which a gateway refuses new players "
                            "(close 1013; default 0.05; 0 turns admission control off, room tick overruns included)")
    serve.add_argument("--games-per-hour", type=int,
                       help="games one player may create per rolling hour (default 20, 0 = unlimited)")
    serve.add_argument("--live-games", type=int,
                       help="games created by one player that may be awake at once (default 3, 0 = unlimited)")
    serve.add_argument("--login-account-failures", type=int,
                       help="failed logins in a row on an account before lockouts start (default 5, 0 = off)")
    serve.add_argument("--login-address-failures", type=int,
                       help="failed logins in a row from one address before lockouts start (default 20, 0 = off)")
    serve.add_argument("--shutdown-timeout", type=float,
                       help="seconds the server has to shut down on SIGTERM/Ctrl-C before it is killed (default 10)")
    serve.add_argument("--rooms", metavar="MODULE[,MODULE...]",
                       help="modules of room kinds to host (imported by the gateways and the room actors; "
                            "default: the installed 'starhold.rooms' entry points, i.e. Starhold's game)")
    _add_host_arguments(serve)
    serve.add_argument("--no-dashboard", action="store_true",
                       help="do not start the Ray dashboard (127.0.0.1:8265; `ray list actors` needs it)")
    serve.set_defaults(func=_serve)
    _add_gateway_parser(sub)

    bots = sub.add_parser("bots", help="bots that fly around a system")
    bots.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway's URL")
    bots.add_argument("--system", default="Sol", help="system id or name")
    bots.add_argument("--count", type=int, default=20)
    bots.add_argument("--duration", type=float, default=None, help="seconds (default: until Ctrl-C)")
    bots.add_argument("--seed", type=int, default=None)
    bots.set_defaults(func=_bots)

    drain = sub.add_parser(
        "drain", help="move every room off a Ray node (players keep their sockets; about a second's gap)",
        description="Mark a Ray node draining (Ray places nothing new on it; Ray cannot undo this: restart "
                    "the node's raylet to use it again), then hibernate each of its rooms with a final "
                    "snapshot and wake it at once on another node. The gateways hold the players' "
                    "sockets and reopen the rooms' channels as soon as they are told; inputs sent "
                    "meanwhile go to the new activation. Prints a line per room and a summary; exit "
                    "status 0 when every room moved, 1 when some failed or are left, 2 when the drain "
                    "could not start (unknown node, no other node to move to, refused by Ray).")
    drain.add_argument("node", metavar="NODE", help="Ray node id (hex, a unique prefix is enough) or the node's IP")
    drain.add_argument("--ray-address", help="GCS address of the cluster (default: $RAY_ADDRESS)")
    drain.add_argument("--namespace", default="starhold", help="Ray namespace of the room actors (default starhold)")
    drain.add_argument("--deadline", type=float, default=300.0,
                       help="seconds after which no further room is moved (default 300)")
    drain.add_argument("--parallel", type=int, default=2,
                       help="rooms moved at once (default 2; each new activation takes about a core for a "
                            "second on the node it goes to: on small nodes 1 gives the shortest gaps)")
    drain.set_defaults(func=_drain)

    from .client.loadtest import add_arguments as loadtest_arguments

    loadtest = sub.add_parser("loadtest", help="lean bots in game sessions: input->ack latency, jitter, CPU (JSON)")
    loadtest_arguments(loadtest)
    loadtest.set_defaults(func=_loadtest)

    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what the supervised server is run with
    if args.command not in ("serve", "gateway"):
        configure_logging(args.log_level, "text")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
