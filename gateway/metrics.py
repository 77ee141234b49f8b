"""Prometheus metrics of a gateway process (prometheus-client), served at ``/metrics``.

Counters and histograms of the gateway's own traffic are module-level (one gateway per
process). Rooms report their tick figures in the items they push to the gateways (a
``("stats", {...})`` item at most once a second, cumulative since the activation started);
every gateway exports the latest report of each room it serves, so across several gateway
processes aggregate those with ``max by (room)``, not ``sum``.

With sockets in room hosts (``gateway/colocate.py``) a host's process has these metrics too,
for the sockets it serves; one node gateway process merges them into its own exposition, each
sample labelled ``host="<host name>"`` (``exposition(hosts)``), so ``sum`` over the gateway
processes still counts every socket once.

| metric | type | meaning |
|---|---|---|
| ``starhold_connections`` | gauge | open WebSockets |
| ``starhold_messages_in_total`` / ``_out_total`` | counter | WebSocket messages received / sent |
| ``starhold_bytes_in_total`` / ``_out_total`` | counter | their payload bytes |
| ``starhold_frame_bytes`` | histogram | size of a tick's frame (the shared part, once per room per tick) |
| ``starhold_frame_delay_seconds`` | histogram | from a room's tick boundary to its frame reaching this gateway |
| ``starhold_inputs_dropped_total{reason}`` | counter | ``rate`` (token bucket) or ``room_busy`` (room input queue full) |
| ``starhold_frames_skipped_total`` | counter | frames not queued for a client that fell behind |
| ``starhold_errors_sent_total{code}`` | counter | error frames by protocol error code |
| ``starhold_closes_total{code}`` | counter | closed sockets by close code (1006: dropped) |
| ``starhold_ray_calls_total{method}`` | counter | calls this process made to room actors |
| ``starhold_joins_refused_total{reason}`` | counter | joins refused while overloaded (close 1013): ``gateway`` (event-loop lag) or ``room`` (tick overruns); see ``gateway/admission.py`` |
| ``starhold_loop_lag_seconds`` | gauge | how late this process's event loop woke the last admission probe |
| ``starhold_overloaded`` | gauge | 1 while this gateway process refuses new players for its event-loop lag |
| ``starhold_room_wake_seconds`` | histogram | time to reach a room that had no live activation (wake or create) |
| ``starhold_room_ticks_total{room}`` | counter | alarm deliveries (ticks) of the room's current activation |
| ``starhold_room_tick_seconds{room}`` | histogram | time spent in ``on_alarm`` per tick |
| ``starhold_room_tick_overruns_total{room}`` | counter | ticks that started more than half a tick late or ran longer than a tick |
| ``starhold_room_barrier_waits_total{room}`` | counter | ticks that waited for a gateway's tick mark (the input barrier, ``starhold._runtime.channel``) |
| ``starhold_room_barrier_timeouts_total{room}`` | counter | ... and went on without it after ``INPUT_BARRIER_TIMEOUT`` (a late gateway) |
| ``starhold_room_barrier_wait_seconds_total{room}`` | counter | seconds ticks spent waiting for marks |
"""

from __future__ import annotations

import logging
from typing import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, REGISTRY, Metric
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger("starhold.gateway")

CONNECTIONS = Gauge("starhold_connections", "Open WebSockets")


class Traffic:
    """WebSocket traffic counters, plain ints bumped on the hot path (a prometheus ``Counter``
    takes a lock per ``inc``: four per input and frame) and exported at scrape time."""

    __slots__ = ("messages_in", "bytes_in", "messages_out", "bytes_out")

    def __init__(self) -> None:
        self.messages_in = self.bytes_in = self.messages_out = self.bytes_out = 0


TRAFFIC = Traffic()
FRAME_BYTES = Histogram("starhold_frame_bytes", "Size of a room's frame per tick, bytes",
                        buckets=(64, 256, 1024, 4096, 16384, 65536, 262144))
FRAME_DELAY = Histogram("starhold_frame_delay_seconds",
                        "From a room's tick boundary to its frame reaching this gateway, seconds",
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1))
INPUTS_DROPPED = Counter("starhold_inputs_dropped", "Client messages dropped", ["reason"])
FRAMES_SKIPPED = Counter("starhold_frames_skipped", "Frames not queued for a client that fell behind")
ERRORS_SENT = Counter("starhold_errors_sent", "Error frames sent", ["code"])
CLOSES = Counter("starhold_closes", "Closed WebSockets by close code", ["code"])
JOINS_REFUSED = Counter("starhold_joins_refused", "Joins refused while overloaded", ["reason"])
HANDOFFS = Counter("starhold_socket_handoffs", "WebSocket upgrades passed between this node's gateway processes "
                   "(room affinity): 'out' to the room's home process, 'in' from another, 'failed' served here",
                   ["direction"])
LOOP_LAG = Gauge("starhold_loop_lag_seconds", "Lateness of the last event-loop probe, seconds")
OVERLOADED = Gauge("starhold_overloaded", "1 while this gateway process refuses new players")
WAKE_SECONDS = Histogram("starhold_room_wake_seconds", "Time to reach a room with no live activation, seconds",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10))

ROOM_STATS: dict[str, dict] = {}
"""Latest ``stats`` report per room (``kind/id``) from the rooms this process serves."""


class _RoomAndRayCollector:
    """Exports ``TRAFFIC``, ``ROOM_STATS`` and the Ray call counters (``starhold._runtime.ray_host.RAY_CALLS``)."""

    def collect(self):
        for name, doc, value in (
                ("starhold_messages_in", "WebSocket messages received", TRAFFIC.messages_in),
                ("starhold_bytes_in", "Bytes of WebSocket messages received", TRAFFIC.bytes_in),
                ("starhold_messages_out", "WebSocket messages sent", TRAFFIC.messages_out),
                ("starhold_bytes_out", "Bytes of WebSocket messages sent", TRAFFIC.bytes_out)):
            yield CounterMetricFamily(name, doc, value=value)
        ticks = CounterMetricFamily("starhold_room_ticks", "Ticks of the room's current activation", labels=["room"])
        overruns = CounterMetricFamily("starhold_room_tick_overruns", "Late or long ticks", labels=["room"])
        seconds = HistogramMetricFamily("starhold_room_tick_seconds", "Time in on_alarm per tick, seconds",
                                        labels=["room"])
        barrier = [CounterMetricFamily("starhold_room_barrier_waits", "Ticks that waited for a gateway's mark",
                                       labels=["room"]),
                   CounterMetricFamily("starhold_room_barrier_timeouts", "Ticks that gave up waiting for a mark",
                                       labels=["room"]),
                   CounterMetricFamily("starhold_room_barrier_wait_seconds", "Seconds ticks waited for marks",
                                       labels=["room"])]
        for room, stats in sorted(ROOM_STATS.items()):
            ticks.add_metric([room], stats["ticks"])
            overruns.add_metric([room], stats["overruns"])
            for family, key in zip(barrier, ("barrier_waits", "barrier_timeouts", "barrier_seconds")):
                family.add_metric([room], stats.get(key, 0))  # absent from a room of an earlier version
            buckets, total = [], 0
            for bound, count in zip(stats["bounds"], stats["counts"]):
                total += count
                buckets.append((repr(float(bound)) if bound != float("inf") else "+Inf", total))
            seconds.add_metric([room], buckets, stats["sum"])
        yield ticks
        yield overruns
        yield seconds
        yield from barrier
        from .._runtime import ray_host  # counters only; importing it does not start Ray

        calls = CounterMetricFamily("starhold_ray_calls", "Calls to room actors", labels=["method"])
        for method, count in sorted(ray_host.RAY_CALLS.items()):
            calls.add_metric([method], count)
        yield calls


REGISTRY.register(_RoomAndRayCollector())


def exposition(hosts: Iterable[tuple[str, bytes]] = ()) -> tuple[bytes, str]:
    """The Prometheus text exposition of this process and its content type. ``hosts``: the
    expositions of room hosts whose sockets this process reports (``(host name, text)``,
    ``gateway.colocate.HostRouter.metrics``), merged in: each of their samples gets the label
    ``host="<host name>"``, under the family of the same name (one ``# TYPE`` per family; the
    hosts' ``_created`` samples are left out). A host's text that does not parse is left out
    (logged at debug level)."""
    hosts = list(hosts)
    if not hosts:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    return generate_latest(_Merged(REGISTRY, hosts)), CONTENT_TYPE_LATEST


class _Merged:
    """A registry-like view (``collect()``) of ``registry`` with the hosts' families merged in."""

    def __init__(self, registry, hosts: list[tuple[str, bytes]]):
        self.registry, self.hosts = registry, hosts

    def collect(self):
        families: dict[str, Metric] = {}
        for family in self.registry.collect():
            families[family.name] = copy = Metric(family.name, family.documentation, family.type, family.unit)
            copy.samples = list(family.samples)
        for host, text in self.hosts:
            try:
                parsed = list(text_string_to_metric_families(text.decode("utf-8")))
            except (ValueError, UnicodeDecodeError) as exc:
                log.debug("metrics of host %s left out: %s", host, exc)
                continue
            for family in parsed:
                if family.name.endswith("_created"):  # a counter's or histogram's creation time
                    continue
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(family.name, family.documentation, family.type,
                                                            family.unit)
                elif merged.type != family.type:
                    continue  # another version's metric of the same name: not mixed
                merged.samples.extend(sample._replace(labels={**sample.labels, "host": host})
                                      for sample in family.samples)
        return iter(families.values())


async def start_metrics_site(host: str, port: int, hosts=None):
    """Serve this process's ``/metrics`` alone on ``host:port`` (no ``SO_REUSEPORT``: with
    several gateway processes behind one port, a scrape of the shared port reaches one of them
    at random; each process's own port reaches that process). ``hosts``: an async callable
    returning the room hosts' expositions to merge in (``Gateway.host_metrics``). Returns the
    aiohttp runner."""
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        body, content_type = exposition(await hosts() if hosts is not None else ())
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
