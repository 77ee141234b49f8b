"""The ``starhold.testing`` pytest plugin as a room author meets it: a fresh project (no
pytest configuration at all) whose suite is run by pytest in a subprocess, the plugin loaded
the documented ways. docs/rooms.md's testing example is run exactly as printed."""

import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rooms.md"

BARE_ASYNC_TEST = '''
from starhold.rooms.examples import CounterRoom


async def test_counts(room_harness):
    h = await room_harness(CounterRoom)
    conn = await h.connect()
    await conn.send("inc")
    assert await conn.next_message() == {"count": 1}
'''


def docs_testing_example() -> str:
    """The first python block of docs/rooms.md's section on testing rooms."""
    section = DOCS.read_text(encoding="utf-8").split("## Testing rooms", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def author(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A room author's project: no ini file, no conftest, pytest's own environment."""
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


@pytest.mark.parametrize("args", [(), ("-p", "starhold.testing")], ids=["autoloaded", "-p starhold.testing"])
def test_a_bare_async_test_runs_with_the_plugin_as_documented(author, args):
    author.makepyfile(test_room=BARE_ASYNC_TEST)
    result = author.runpytest_subprocess(*args)
    assert "already registered" not in result.stderr.str() + result.stdout.str()
    result.assert_outcomes(passed=1)


def test_with_plugin_autoload_disabled_the_documented_flags_load_it(author, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    author.makepyfile(test_room=BARE_ASYNC_TEST)
    author.runpytest_subprocess("-p", "asyncio", "-p", "starhold.testing").assert_outcomes(passed=1)


def test_an_explicit_asyncio_mode_is_left_alone(author):
    """A project that chose strict mode keeps it (its async fixtures need
    ``@pytest_asyncio.fixture``); its bare async tests still run."""
    author.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    author.makepyfile(test_room=BARE_ASYNC_TEST)
    result = author.runpytest_subprocess()
    assert re.search(r"asyncio: mode=(Mode\.STRICT|strict)", result.stdout.str())
    result.assert_outcomes(passed=1)


def test_the_testing_example_in_the_docs_runs_as_printed(author):
    author.makepyfile(test_docs_example=docs_testing_example())
    author.runpytest_subprocess().assert_outcomes(passed=1)


FIXTURES = ["manual_clock", "room_directory", "room_harness", "ray_cluster", "ray_directory",
            "gateway_factory", "no_blocking", "seaweedfs", "s3_store", "moto_s3"]


def test_every_fixture_of_the_plugin_has_a_docstring(author):
    result = author.runpytest_subprocess("--fixtures")
    lines = result.stdout.lines
    for name in FIXTURES:
        at = [i for i, line in enumerate(lines) if re.match(rf"{name}( \[session scope\])? -- ", line)]
        assert at, f"fixture {name} not listed"
        assert "no docstring available" not in lines[at[0] + 1], f"fixture {name} has no docstring"
