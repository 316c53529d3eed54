"""HTTP: the transcription model registry, for server administrators.

``GET /models`` lists the latest version of every registered model with the error
table measured for it (:mod:`transcription.registry`); registering and measuring
are done with ``dawserver models`` on the command line.
"""

from __future__ import annotations

from transcription.registry import ModelRegistry

from .keys import DATABASE
from .permissions import SERVER_MODELS
from .plugin_api import Model, Request, Route


class LanguageScore(Model):
    """One language's measured error."""

    language: str
    detected: str
    probability: float
    wer: float
    cer: float


class RegisteredModel(Model):
    """The latest version of a registered model."""

    name: str
    version: int
    sha256: str
    size_bytes: int
    languages: list[str]
    registered_by: str
    registered_at: float
    scores: list[LanguageScore]


async def list_models(request: Request) -> list[RegisteredModel]:
    """The latest version of every registered model and its measured error table."""
    registry = ModelRegistry(request.app[DATABASE])
    listed = []
    for version in await registry.latest():
        scores = [LanguageScore(language=s.language, detected=s.detected,
                                probability=s.probability, wer=s.wer, cer=s.cer)
                  for s in await registry.scores(version)]
        listed.append(RegisteredModel(
            name=version.name, version=version.version, sha256=version.sha256,
            size_bytes=version.size_bytes, languages=list(version.languages),
            registered_by=version.registered_by, registered_at=version.registered_at,
            scores=scores))
    return listed


ROUTES = [
    Route(method="GET", path="/models", handler=list_models, permission=SERVER_MODELS,
          response=list[RegisteredModel]),
]
