"""The OpenAPI document: valid 3.1, generated from every served route, and its reference page."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from dawserver import page
from dawserver.app import COLLAB_PATH, create_app
from dawserver.config import ServerConfig
from dawserver.openapi import DOCS_PATH, OPENAPI_PATH, openapi_path


def _document(tmp_path: Path) -> tuple[dict, set[tuple[str, str]], int]:
    async def go() -> tuple[dict, set[tuple[str, str]], int]:
        app = create_app(ServerConfig(data_dir=tmp_path, engine=False))
        routes = {(r.method, openapi_path(r.resource.canonical)) for r in app.router.routes()
                  if r.method != "HEAD" and r.resource.canonical != COLLAB_PATH}
        async with TestClient(TestServer(app)) as client, client.get(OPENAPI_PATH) as answer:
            return await answer.json(), routes, answer.status

    return asyncio.run(go())


def test_the_document_is_valid_openapi_31_and_covers_every_route(tmp_path: Path) -> None:
    document, routes, status = _document(tmp_path)
    assert status == 200 and document["openapi"] == "3.1.0"
    validate(document)
    documented = {(method.upper(), path) for path, methods in document["paths"].items()
                  for method in methods}
    assert documented == routes
    assert ("POST", "/api/distribution/releases") in documented  # plug-in routes too
    operation_ids = [op["operationId"] for methods in document["paths"].values()
                     for op in methods.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_operations_say_their_permission_and_models(tmp_path: Path) -> None:
    document, _routes, _status = _document(tmp_path)
    bounce = document["paths"]["/projects/{project_id}/bounces"]["post"]
    assert bounce["x-permission"] == "project.edit" and "editor or higher" in bounce["description"]
    body = bounce["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/BounceOptions"}
    options = document["components"]["schemas"]["BounceOptions"]["properties"]
    assert options["tail"]["maximum"] == 60
    # a full disk (507) and an unreachable database (503) can answer any route
    assert set(bounce["responses"]) >= {"202", "401", "403", "422", "503", "507", "default"}
    health = document["paths"]["/healthz"]["get"]
    assert health["security"] == [] and "x-permission" in health
    # the most bytes of body each reads: 64 KiB of JSON unless the route declares more
    paths = document["paths"]
    assert bounce["x-max-body-bytes"] == 64 * 1024
    assert paths["/accounts"]["post"]["x-max-body-bytes"] == 64 * 1024
    assert paths["/projects"]["post"]["x-max-body-bytes"] == 16 * 1024 * 1024
    assert paths["/api/distribution/releases"]["post"]["x-max-body-bytes"] == 1024 * 1024
    assert "x-max-body-bytes" not in paths["/projects/{project_id}/assets"]["post"]
    assert "x-max-body-bytes" not in health
    releases = document["paths"]["/api/distribution/releases"]["get"]
    assert {p["name"] for p in releases["parameters"]} == {"account"}
    assert releases["tags"] == ["distribution"]


def test_the_reference_page_uses_the_bundled_redoc(tmp_path: Path) -> None:
    async def go() -> None:
        app = create_app(ServerConfig(data_dir=tmp_path, engine=False))
        async with TestClient(TestServer(app)) as client:
            async with client.get(DOCS_PATH) as answer:
                html = await answer.text()
                assert answer.status == 200 and answer.content_type == "text/html"
            assert f'spec-url="{OPENAPI_PATH}"' in html and "https://" not in html
            async with client.get("/static/redoc.standalone.js") as script:
                assert script.status == 200 and len(await script.read()) > 100_000

    asyncio.run(go())
    assert (page.STATIC_DIR / "redoc.standalone.js").is_file()
