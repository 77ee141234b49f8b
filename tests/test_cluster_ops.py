"""Operating on a cluster, the parts that need neither Ray nor S3 (issue 15): per-node room
directories, what ``init_ray`` gives ``ray.init`` (a fresh local Ray, AWS variables through
``runtime_env``), ``starhold gateway``'s required flag, ``/healthz`` with and without a cluster
probe, absolute data dirs."""

import aiohttp
import pytest

from starhold._runtime.local_host import InProcessDirectory
from starhold._runtime.paths import node_data_dir, room_db_path
from starhold._runtime.ray_host import FORWARDED_ENV, HEALTH_CHECK_CONFIG, forwarded_env, ray_init_kwargs
from starhold.cli import main
from starhold.config import Settings

NODE = "3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8"


def test_node_data_dir_is_the_data_dir_with_local_snapshots(tmp_path):
    assert node_data_dir(tmp_path, NODE, s3_snapshots=False, environ={}) == tmp_path


def test_node_data_dir_is_a_per_node_cache_with_s3_snapshots(tmp_path):
    path = node_data_dir(tmp_path, NODE, s3_snapshots=True, environ={})
    assert path == tmp_path / "nodes" / "3f9a0c1d2e4b"
    assert room_db_path(path, "system", "sol") == tmp_path / "nodes" / "3f9a0c1d2e4b" / "rooms" / "system" / "sol.sqlite"


@pytest.mark.parametrize("s3", [False, True])
def test_the_nodes_own_directory_wins(tmp_path, s3):
    environ = {"STARHOLD_NODE_DATA_DIR": str(tmp_path / "local-ssd")}
    assert node_data_dir(tmp_path / "shared", NODE, s3_snapshots=s3, environ=environ) == tmp_path / "local-ssd"


def test_node_data_dir_refuses_what_is_not_a_node_id(tmp_path):
    for bad in ("", "xyz", "../../etc/passwd"):
        with pytest.raises(ValueError):
            node_data_dir(tmp_path, bad, s3_snapshots=True, environ={})


def test_without_an_address_ray_starts_a_fresh_local_instance():
    # "local": never RAY_ADDRESS nor /tmp/ray/ray_current_cluster, which address=None would join
    kwargs = ray_init_kwargs(None, "ns", environ={"RAY_ADDRESS": "10.0.0.1:6379"})
    assert kwargs == {"address": "local", "namespace": "ns", "include_dashboard": False,
                      "_system_config": HEALTH_CHECK_CONFIG}  # a dead node is noticed in ~3 s
    assert ray_init_kwargs("127.0.0.1:6379", "ns", environ={})["address"] == "127.0.0.1:6379"
    assert "include_dashboard" not in ray_init_kwargs("127.0.0.1:6379", "ns", environ={})


def test_aws_variables_that_are_set_reach_the_actors_through_runtime_env():
    environ = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret", "AWS_REGION": "eu-west-3",
               "AWS_SESSION_TOKEN": "", "AWS_CA_BUNDLE": "/etc/ssl/ca.pem", "HOME": "/root"}
    assert forwarded_env(environ) == {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret",
                                      "AWS_REGION": "eu-west-3"}
    kwargs = ray_init_kwargs("127.0.0.1:6379", "ns", environ=environ,
                             runtime_env={"env_vars": {"AWS_REGION": "us-east-2", "X": "1"}, "working_dir": "."})
    assert kwargs["runtime_env"] == {"env_vars": {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cret",
                                                  "AWS_REGION": "us-east-2", "X": "1"}, "working_dir": "."}
    assert "runtime_env" not in ray_init_kwargs(None, "ns", environ={"HOME": "/root"})
    assert set(FORWARDED_ENV) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                  "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL"}


def test_starhold_gateway_requires_a_ray_address(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("STARHOLD_RAY_ADDRESS", raising=False)
    with pytest.raises(SystemExit) as exc:
        main(["gateway", "--port", "0", "--data-dir", str(tmp_path)])
    assert "starhold gateway needs --ray-address" in str(exc.value.code)


def test_settings_data_dir_is_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings().data_dir == tmp_path / "data"
    assert Settings(data_dir="x/y").data_dir == tmp_path / "x" / "y"
    assert Settings.from_env({}, data_dir="z").data_dir == tmp_path / "z"


def test_colocate_is_a_flag_from_the_environment_or_the_command_line():
    assert Settings().colocate is True  # on by default (issue 17)
    assert Settings.from_env({"STARHOLD_COLOCATE": "1"}).colocate is True
    assert Settings.from_env({"STARHOLD_COLOCATE": "0"}).colocate is False
    assert Settings.from_env({"STARHOLD_COLOCATE": "0"}, colocate=True).colocate is True


def test_ray_env_defaults_leave_an_operator_s_values_alone():
    from starhold._runtime.ray_host import RAY_ENV_DEFAULTS, apply_ray_env_defaults

    environ = {"RAY_worker_niceness": "5", "HOME": "/root"}
    applied = apply_ray_env_defaults(environ)
    assert environ["RAY_worker_niceness"] == "5" and "RAY_worker_niceness" not in applied
    assert environ["RAY_LOG_MONITOR_MANY_FILES_THRESHOLD"] == "0" and environ["LOG_NAME_UPDATE_INTERVAL_S"] == "2"
    assert environ == {**RAY_ENV_DEFAULTS, "RAY_worker_niceness": "5", "HOME": "/root"}
    assert apply_ray_env_defaults(environ) == {}


def test_no_colocate_on_the_command_line_turns_it_off():
    import argparse

    from starhold.cli import _add_host_arguments

    parser = argparse.ArgumentParser()
    _add_host_arguments(parser)
    assert parser.parse_args([]).colocate is None  # the environment or the default decides
    assert parser.parse_args(["--colocate"]).colocate is True
    assert parser.parse_args(["--no-colocate"]).colocate is False
    assert Settings.from_env({"STARHOLD_COLOCATE": "1"}, colocate=False).colocate is False


async def test_healthz_in_process_rooms_need_no_ray(gateway_factory, tmp_path):
    directory = InProcessDirectory(tmp_path / "data")
    url = await gateway_factory(directory, rooms=[])
    async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
        body = await response.json()
    assert response.status == 200
    assert body["ok"] is True and body["ray"] == "n/a"
    await directory.close()


class FlakyClusterDirectory(InProcessDirectory):
    """An in-process directory with a cluster probe that fails while ``down`` is set."""

    down: str | None = None
    probes = 0

    async def probe(self, timeout: float) -> None:
        self.probes += 1
        if self.down:
            raise ConnectionError(self.down)


async def test_healthz_answers_503_while_the_cluster_is_unreachable(gateway_factory, tmp_path):
    from starhold.gateway.app import GATEWAY

    directory = FlakyClusterDirectory(tmp_path / "data")
    url = await gateway_factory(directory, rooms=[])
    gateway = url.app[GATEWAY]
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/healthz") as response:  # probed once at startup
            assert response.status == 200
            assert (await response.json())["ray"] == "ok"
        probes = directory.probes
        for _ in range(5):  # requests never probe: the state comes from the background task
            async with session.get(url + "/healthz"):
                pass
        assert directory.probes == probes
        directory.down = "GCS at 127.0.0.1:6379 gone"
        assert await gateway.probe_ray() == "unreachable: ConnectionError: GCS at 127.0.0.1:6379 gone"
        async with session.get(url + "/healthz") as response:
            body = await response.json()
        assert response.status == 503
        assert body["ok"] is False and body["status"] == "unhealthy"
        assert body["ray"] == "unreachable: ConnectionError: GCS at 127.0.0.1:6379 gone"
        directory.down = None
        await gateway.probe_ray()
        async with session.get(url + "/healthz") as response:
            assert response.status == 200
    await directory.close()


async def test_a_probe_that_hangs_counts_as_unreachable(gateway_factory, tmp_path):
    import asyncio

    from starhold.gateway.app import GATEWAY

    directory = FlakyClusterDirectory(tmp_path / "data")
    url = await gateway_factory(directory, rooms=[])
    never = asyncio.Event()

    async def hang(timeout):
        await never.wait()

    directory.probe = hang
    assert await url.app[GATEWAY].probe_ray(timeout=0.05) == "unreachable: no answer within 0.05 s"
    await directory.close()
