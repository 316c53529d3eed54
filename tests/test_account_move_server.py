"""A running server moves an account with its project's document, audio and bounce.

Regions ``eu`` (SQLite, then PostgreSQL) and ``us`` (SQLite), each with its own storage
directory. A us person makes a project with everything (as in
test_regions_documents.py: a live edit, a clip of uploaded audio, a bounce, an export
of her data), the
server's mover takes her to eu, and every database and directory is read back; the
server serves the document, the audio and the bounce from eu.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer
from test_regions_documents import (
    COLLAB_TABLES,
    files_under,
    mentions,
    project_with_everything,
    signed_up_in,
    stored_audio,
)

from dawserver.accounts_setup import ACCOUNT_MOVER
from dawserver.config import RegionConfig


@pytest.mark.asyncio
async def test_a_moved_accounts_project_is_served_from_the_new_region_only(
    tmp_path: Path, smtp_server: SmtpServer, collab_database_url: str
) -> None:
    us_url = f"sqlite://{tmp_path / 'us.sqlite3'}"
    regions = {
        "eu": RegionConfig(collab_database_url, "eu-files"),
        "us": RegionConfig(us_url, str(tmp_path / "us-files")),
    }
    async with accounts_server(tmp_path, smtp_server, regions=regions) as (app, config):
        eu_files, us_files = config.data_dir / "eu-files", tmp_path / "us-files"
        sam = Person(config.base_url, smtp_server, "sam@example.com")
        try:
            await signed_up_in(sam, "us")
            project_id, asset = await project_with_everything(sam, 330)
            status, before, _ = await sam.call("GET", f"/projects/{project_id}")
            assert status == 200, before
            status, bounces, _ = await sam.call("GET", f"/projects/{project_id}/bounces")
            assert status == 200 and len(bounces) == 1, bounces
            status, bounced, _ = await sam.call("GET", bounces[0]["audio"])
            assert status == 200
            us_before = files_under(us_files / "assets", asset["id"])
            assert us_before and files_under(us_files / "bounces", project_id)
            assert len(list((us_files / "exports").rglob("*.zip"))) == 1

            await app[ACCOUNT_MOVER].move(sam.id, "eu")

            # the document, as the server shows it, is the same
            status, after, _ = await sam.call("GET", f"/projects/{project_id}")
            assert status == 200 and after["document"] == before["document"]
            # the audio and the bounce are served, byte for byte, from eu
            status, assets, _ = await sam.call("GET", f"/projects/{project_id}/assets")
            assert status == 200 and [a["id"] for a in assets] == [asset["id"]]
            status, audio, _ = await sam.call("GET", assets[0]["download"])
            assert status == 200 and hashlib.sha256(audio).hexdigest() == asset["id"]
            status, again, _ = await sam.call("GET", bounces[0]["audio"])
            assert status == 200 and again == bounced
        finally:
            await sam.close()
    # the document's rows are in eu only; the files in eu's directory only
    assert await mentions(us_url, project_id) == {}
    assert {"collab_projects", "collab_snapshots", "account_projects"} <= set(
        await mentions(collab_database_url, project_id)
    )
    main_url = f"sqlite://{config.data_dir / 'collab.sqlite3'}"
    assert set(await mentions(main_url, project_id)) & COLLAB_TABLES == set()
    assert files_under(us_files / "assets", asset["id"], project_id) == []
    assert files_under(us_files / "bounces", project_id) == []
    assert stored_audio(eu_files, asset["id"])
    assert files_under(eu_files / "bounces", project_id)
    # her export archive went with her
    assert list((us_files / "exports").rglob("*.zip")) == []
    assert len(list((eu_files / "exports").rglob("*.zip"))) == 1
