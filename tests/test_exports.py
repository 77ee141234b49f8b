"""The framework's public surface: ``starhold``'s names resolve, and every public module says
what it exports (``__all__``) and exports only what it defines or imports."""

from __future__ import annotations

import importlib

import pytest

import starhold

PUBLIC_MODULES = [
    "starhold.room", "starhold.connection", "starhold.clock", "starhold.kinds", "starhold.errors",
    "starhold.config", "starhold.storage.base", "starhold.storage.snapshots", "starhold.storage.factory",
    "starhold.storage.sqlite_store", "starhold.storage.values", "starhold.storage.s3_client",
    "starhold.client", "starhold.client.connection", "starhold.client.http", "starhold.client.loadstats",
    "starhold.client.loadtest",
]
"""Modules room authors, testers and operators import from (the private runtime is not one)."""


@pytest.mark.parametrize("name", sorted(starhold.__all__))
def test_every_public_name_of_the_package_resolves(name):
    assert getattr(starhold, name) is not None
    assert name in dir(starhold)


def test_the_package_exports_the_room_api():
    for name in ("Room", "Connection", "ConnectRequest", "HttpRequest", "HttpResponse", "AlarmInfo",
                 "ManualClock", "define_room", "load_rooms", "StorageError", "RoomGone"):
        assert name in starhold.__all__
    assert starhold.Room is importlib.import_module("starhold.room").Room
    with pytest.raises(AttributeError):
        starhold.RoomRuntime  # noqa: B018  (internals are not public names)


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_public_modules_declare_what_they_export(module):
    mod = importlib.import_module(module)
    assert isinstance(getattr(mod, "__all__", None), list), f"{module} has no __all__"
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert missing == [], f"{module}.__all__ names what it does not have: {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{module}.__all__ repeats a name"
