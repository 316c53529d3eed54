"""Bulk scheduling over HTTP: a CSV file checked row by row against the account's
channels, its live posts and the person's rights, then scheduled valid rows or all
or nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from pathlib import Path
from typing import Any

import pytest
from social_helpers import InTestNetwork, connect, social_app, who

from business.social import bulk_routes
from business.social.services import services

pytestmark = pytest.mark.timeout(120)
OWNER = who("acc", "p_dee", "owner")
ADA = who("acc", "p_ada", "editor")


def at(days: float) -> str:
    """An ISO time ``days`` from now, on the minute, with its offset."""
    when = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    return when.replace(second=0, microsecond=0).isoformat()


async def upload(client: Any, csv: str | bytes, headers: dict[str, str] = ADA,
                 **query: str) -> Any:
    data = csv.encode("utf-8") if isinstance(csv, str) else csv
    return await client.post("/api/social/bulk", params=query, data=data,
                             headers={**headers, "Content-Type": "text/csv"})


def test_a_csv_schedules_its_valid_rows_or_nothing_and_says_what_is_wrong_per_cell(
        tmp_path: Path, db_url: str) -> None:
    async def go() -> None:
        x, bsky = InTestNetwork("x"), InTestNetwork("bluesky")
        async with social_app(tmp_path, db_url, x, bsky,
                              memberships={("acc", "p_bo"): "member",
                                           ("acc", "p_dee"): "owner"}) as (client, _context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            bsky_id = (await connect(client, bsky, "acc", "p_dee"))["channel_id"]
            listed = await (await client.get("/api/social/channels", headers=ADA)).json()
            handle = next(c["handle"] for c in listed if c["channel_id"] == bsky_id)
            # the same handle on both networks: alone it names neither
            assert {c["handle"] for c in listed} == {handle}
            earlier = await (await client.post("/api/social/posts", headers=ADA, json={
                "text": "Out now", "publish_at": at(1),
                "targets": [{"channel_id": x_id}]})).json()
            await client.post(f"/api/social/posts/{earlier['post_id']}/submit", headers=ADA,
                              json={})
            assert (await client.put(f"/api/social/channels/{bsky_id}/approvals",
                                     headers=OWNER, json={"tiers": [[{"person": "p_dee"}]]}
                                     )).status == 200
            csv = ("\ufeffdatetime,channel,text,media\r\n"
                   f"{at(2)},{x_id},New single Friday,\r\n"
                   f"{at(2)},Bluesky:{handle.upper()},New single Friday,\r\n"
                   f"{at(1.05)},{x_id},  OUT   now ,\r\n"
                   f"next friday,{x_id},Tour dates,\r\n"
                   f"{at(3)},{handle},Hello,\r\n"
                   f"{at(3)},{x_id},Artwork,https://cdn.example/art.jpg\r\n")

            nothing = await upload(client, csv, mode="all_or_nothing")
            assert nothing.status == 200, await nothing.text()
            report = await nothing.json()
            assert (report["total_rows"], report["scheduled"], report["post_ids"]) == (6, 0, [])
            assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [
                (4, "text", "duplicate"), (5, "datetime", "bad_datetime"),
                (6, "channel", "unknown_channel"), (7, "media", "media_url")]
            assert "3 days" in report["errors"][0]["message"]
            posts = await (await client.get("/api/social/posts", headers=ADA)).json()
            assert [p["post_id"] for p in posts] == [earlier["post_id"]]

            done = await (await upload(client, csv, mode="valid_rows")).json()
            assert done["scheduled"] == 2 and len(done["errors"]) == 4
            made = {}
            for post_id in done["post_ids"]:
                post = await (await client.get(f"/api/social/posts/{post_id}",
                                               headers=ADA)).json()
                made[post["targets"][0]["channel_id"]] = post
            assert made[x_id]["state"] == "scheduled"          # no workflow: on the schedule
            assert made[x_id]["targets"][0]["state"] == "scheduled"
            assert made[bsky_id]["state"] == "pending_approval"  # its approvers first
            assert {p["text"] for p in made.values()} == {"New single Friday"}
            assert {p["author_id"] for p in made.values()} == {"p_ada"}
            want = dt.datetime.fromisoformat(at(2))
            assert dt.datetime.fromisoformat(made[x_id]["publish_at"]) == want

            # the same file again: its rows are duplicates of what it scheduled
            again = await (await upload(client, csv)).json()
            assert again["scheduled"] == 0
            assert {(e["row"], e["code"]) for e in again["errors"]} >= {
                (2, "duplicate"), (3, "duplicate")}

            # a person who may only view X gets the row refused, not scheduled
            await client.put(f"/api/social/channels/{x_id}/rights", headers=OWNER,
                             json={"rights": [{"person": "p_bo", "access": "view"}]})
            viewer = await (await upload(client, f"datetime,channel,text\n{at(4)},{x_id},Mine\n",
                                         who("acc", "p_bo", "editor"))).json()
            assert viewer["scheduled"] == 0
            assert [(e["row"], e["column"], e["code"]) for e in viewer["errors"]] == [
                (2, "channel", "not_allowed")]

            latin = await upload(client, b"datetime,channel,text\n"
                                 + f"{at(4)},{x_id},Caf\u00e9\n".encode("latin-1"))
            assert latin.status == 400
            assert "UTF-8" in (await latin.json())["error"]
            zone = await upload(client, f"datetime,channel,text\n{at(4)},{x_id},x\n",
                                zone="Mars/Olympus")
            assert zone.status == 400
            assert (await client.post("/api/social/bulk", data=b"datetime,channel,text\n",
                                      headers={**who("acc", "p_cy", "viewer"),
                                               "Content-Type": "text/csv"})).status == 403

    asyncio.run(go())


def test_the_same_file_sent_twice_at_once_is_scheduled_once(tmp_path: Path,
                                                            db_url: str) -> None:
    """Review 153: a client retrying an upload while the first is still being stored
    does not schedule its rows twice (the account's bulk lock orders the two, and the
    second finds the first's posts as duplicates); a file over 10,000 rows is refused."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, _context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = "datetime,channel,text\n" + "".join(
                f"{at(1 + n / 24)},{x_id},Post number {n}\n" for n in range(40))
            first, second = await asyncio.gather(upload(client, csv), upload(client, csv))
            reports = [await first.json(), await second.json()]
            assert sorted(r["scheduled"] for r in reports) == [0, 40]
            posts = await (await client.get("/api/social/posts", headers=ADA)).json()
            assert len(posts) == 40

            big = "datetime,channel,text\n" + f"{at(2)},{x_id},Same\n" * 10_001
            too_many = await upload(client, big)
            assert too_many.status == 400
            assert "10,000 rows" in (await too_many.json())["error"]

    asyncio.run(go())


def test_a_row_whose_time_passes_while_the_file_is_checked_is_refused_alone(
        tmp_path: Path, db_url: str) -> None:
    """A row due while the file's media are looked up (up to two minutes) is no longer
    in the future when the rows are stored: that row is refused as in the past, and the
    others are scheduled, not the whole file refused."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            posts = services(context).posts
            checked = posts.clock
            csv = (f"datetime,channel,text\n{at(2 / 24)},{x_id},Soon\n"
                   f"{at(1)},{x_id},Tomorrow\n")
            posts.clock = lambda: checked() + 3 * 3600  # the first row's time went by
            answer = await upload(client, csv, mode="valid_rows")
            report = await answer.json()
            assert answer.status == 200 and report["scheduled"] == 1, report
            assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [
                (2, "datetime", "in_the_past")]
            posts.clock = checked
            answer = await upload(client, csv.replace("Tomorrow", "Later"),
                                  mode="all_or_nothing")
            assert (await answer.json())["scheduled"] == 2  # checked now: both in time

    asyncio.run(go())


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_again(
        tmp_path: Path, db_url: str) -> None:
    """The same key and file answer what the first upload scheduled (not a report of
    duplicates); a retry sent while the first runs is told to wait, never scheduled
    twice; the key with another file or mode is refused; an error keeps no answer."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, _context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = "datetime,channel,text\n" + "".join(
                f"{at(1 + n / 24)},{x_id},Post number {n}\n" for n in range(30))
            key = {**ADA, "Idempotency-Key": "bulk-upload-1"}

            first, second = await asyncio.gather(upload(client, csv, key),
                                                 upload(client, csv, key))
            answers = {first, second}
            done = next(a for a in answers if "Idempotent-Replayed" not in a.headers
                        and a.status == 200)
            report = await done.json()
            assert report["scheduled"] == 30 and report["errors"] == []
            other = (answers - {done}).pop()
            if other.status == 409:   # it came while the first ran: told to try again
                assert other.headers["Retry-After"] == "1"
                assert "still running" in (await other.json())["error"]
            else:                     # it came after: the first answer, replayed
                assert other.headers["Idempotent-Replayed"] == "true"
                assert await other.json() == report

            retry = await upload(client, csv, key)
            assert retry.status == 200 and retry.headers["Idempotent-Replayed"] == "true"
            assert await retry.json() == report
            posts = await (await client.get("/api/social/posts", headers=ADA)).json()
            assert len(posts) == 30

            changed = await upload(client, csv + f"{at(5)},{x_id},One more\n", key)
            assert changed.status == 422
            assert "bulk-upload-1" in (await changed.json())["error"]
            assert (await upload(client, csv, key, mode="all_or_nothing")).status == 422
            # another person's upload is another request, whatever its key
            assert (await upload(client, csv, {**OWNER, "Idempotency-Key": "bulk-upload-1"})
                    ).status == 422

            # an error is not kept: the corrected request may use the same key
            fix = {**ADA, "Idempotency-Key": "bulk-upload-2"}
            line = f"datetime,channel,text\n{at(6)},{x_id},Encore\n"
            assert (await upload(client, line, fix, zone="Mars/Olympus")).status == 400
            fixed = await upload(client, line, fix, zone="UTC")
            assert fixed.status == 200 and "Idempotent-Replayed" not in fixed.headers
            assert (await fixed.json())["scheduled"] == 1
            posts = await (await client.get("/api/social/posts", headers=ADA)).json()
            assert len(posts) == 31

    asyncio.run(go())


def media_files(folder: Path) -> dict[str, Path]:
    """A PNG (1200x800), an MP4 (2 s, 640x360) and a WAV (1 s), made by ffmpeg."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {"cover": (folder / "cover.png", ["-f", "lavfi", "-i", "color=red:s=1200x800",
                                             "-frames:v", "1"]),
            "clip": (folder / "clip.mp4", ["-f", "lavfi", "-i", "testsrc=s=640x360:d=2",
                                           "-f", "lavfi", "-i", "sine=d=2", "-shortest",
                                           "-c:v", "libx264", "-pix_fmt", "yuv420p",
                                           "-c:a", "aac"]),
            "bounce": (folder / "bounce.wav", ["-f", "lavfi", "-i", "sine=d=1"])}
    for path, args in made.values():
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(path)], check=True,
                       timeout=60)
    return {name: path for name, (path, _args) in made.items()}


def test_bulk_rows_carry_media_from_the_accounts_library_checked_as_the_composers(
        tmp_path: Path, db_url: str) -> None:
    """A row's media cell names assets of the account's projects: each is read from
    its file (kind, type, size, shape, length) and checked by the network's rules as a
    composed post's media is; another account's asset, an unknown id and a web address
    are refused in their row, saying what to do."""
    files = media_files(tmp_path / "files")
    library = {("acc", "asset_cover"): files["cover"], ("acc", "asset_clip"): files["clip"],
               ("acc", "asset_bounce"): files["bounce"],
               ("other", "asset_theirs"): files["cover"]}

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            async def asset_file(account_id: str, asset_id: str) -> str | None:
                found = library.get((account_id, asset_id))
                return None if found is None else str(found)

            context.asset_file = asset_file
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = ("datetime,channel,text,media\n"
                   f"{at(2)},{x_id},The clip,asset_clip\n"
                   f"{at(2)},{x_id},Someone else's cover,asset_theirs\n"
                   f"{at(2)},{x_id},A typo,asset_cvoer\n"
                   f"{at(2)},{x_id},From the web,https://cdn.example/art.jpg\n"
                   f"{at(2)},{x_id},Just the bounce,asset_bounce\n"
                   f"{at(2)},{x_id},Cover and clip,asset_cover asset_clip\n"
                   f"{at(3)},{x_id},The cover,asset_cover\n")
            report = await (await upload(client, csv)).json()
            # X's rules as the composer applies them: no audio, no images with a video
            assert [(e["row"], e["column"], e["code"]) for e in report["errors"]] == [
                (3, "media", "unknown_media"), (4, "media", "unknown_media"),
                (5, "media", "media_url"), (6, "media", "audio_not_supported"),
                (7, "media", "mixed_media")]
            assert "asset_theirs" in report["errors"][0]["message"]
            assert "upload the file" in report["errors"][2]["message"]
            assert report["scheduled"] == 2
            posts = {}
            for post_id in report["post_ids"]:
                post = await (await client.get(f"/api/social/posts/{post_id}",
                                               headers=ADA)).json()
                posts[post["text"]] = post
            cover = {"asset_id": "asset_cover", "kind": "image",
                     "content_type": "image/png",
                     "size_bytes": files["cover"].stat().st_size, "duration_s": None,
                     "width": 1200, "height": 800}
            assert posts["The cover"]["media"] == [cover]
            assert posts["The cover"]["state"] == "scheduled"
            [clip] = posts["The clip"]["media"]
            assert (clip["asset_id"], clip["kind"], clip["content_type"], clip["width"],
                    clip["height"]) == ("asset_clip", "video", "video/mp4", 640, 360)
            assert clip["size_bytes"] == files["clip"].stat().st_size
            assert 1.9 <= clip["duration_s"] <= 2.2

            # the composer's rules, not looser ones: five images are one too many on X
            many = ("datetime,channel,text,media\n"
                    f"{at(4)},{x_id},Gallery,{' '.join(['asset_cover'] * 5)}\n")
            refused = await (await upload(client, many)).json()
            assert [(e["row"], e["code"]) for e in refused["errors"]] == [
                (2, "too_many_media")]

    asyncio.run(go())


def test_a_refused_row_does_not_make_a_later_row_its_duplicate(tmp_path: Path,
                                                              db_url: str) -> None:
    """Review 153: a row refused by the route (media, rights) schedules nothing, so the
    same text later in the file is no "same text as row N" duplicate of it."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, _context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = ("datetime,channel,text,media\n"
                   f"{at(2)},{x_id},Tour poster,https://cdn.example/poster.jpg\n"
                   f"{at(2)},{x_id},Tour poster,\n")
            report = await (await upload(client, csv)).json()
            assert [(e["row"], e["code"]) for e in report["errors"]] == [
                (2, "media_url")]
            assert report["scheduled"] == 1

    asyncio.run(go())


def test_bulk_posts_keep_the_zone_their_row_was_written_in(tmp_path: Path,
                                                            db_url: str) -> None:
    """Review 153: a bulk post keeps the zone its time was written in (its timezone
    cell, else the upload's zone), as a composed post does; an offset alone is UTC."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, _context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            day = (dt.date.today() + dt.timedelta(days=5)).isoformat()
            csv = ("date,time,timezone,channel,text\n"
                   f"{day},18:30,Europe/Paris,{x_id},In Paris\n"
                   f"{day},18:30,,{x_id},In New York\n")
            report = await (await upload(client, csv, zone="America/New_York")).json()
            offset = await (await upload(
                client, f"datetime,channel,text\n{at(6)},{x_id},With an offset\n")).json()
            zones = {}
            for post_id in report["post_ids"] + offset["post_ids"]:
                post = await (await client.get(f"/api/social/posts/{post_id}",
                                               headers=ADA)).json()
                zones[post["text"]] = post["time_zone"]
            assert zones == {"In Paris": "Europe/Paris", "In New York": "America/New_York",
                             "With an offset": "UTC"}

    asyncio.run(go())


def test_the_file_is_read_before_the_transaction_that_stores_it(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 154: the CSV is parsed and checked before the transaction that stores
    its posts (on SQLite that transaction holds the server's one writer); inside it only
    the duplicates are checked again, against the posts stored meanwhile."""
    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            events: list[str] = []
            real_read = bulk_routes.import_csv

            def read(*args: Any, **kwargs: Any) -> Any:
                events.append("read")
                return real_read(*args, **kwargs)

            store = services(context).posts.store
            real_lock = store.lock_bulk

            async def lock(*args: Any, **kwargs: Any) -> Any:
                events.append("transaction")
                return await real_lock(*args, **kwargs)

            monkeypatch.setattr(bulk_routes, "import_csv", read)
            monkeypatch.setattr(store, "lock_bulk", lock)
            report = await (await upload(
                client, f"datetime,channel,text\n{at(2)},{x_id},Tour dates\n")).json()
            assert report["scheduled"] == 1
            assert events == ["read", "transaction"]

    asyncio.run(go())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_media_are_looked_up_before_the_worker_thread_reads_the_file(
        tmp_path: Path, db_url: str) -> None:
    """Review R3: with every worker thread busy, a look-up that needs a thread of its
    own (the asset store's, ffprobe's) never waits behind the thread reading the file:
    on a one-thread executor the upload with media still finishes."""
    files = media_files(tmp_path / "files")

    async def go() -> None:
        from concurrent.futures import ThreadPoolExecutor

        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            async def asset_file(account_id: str, asset_id: str) -> str | None:
                # as the platform's asset look-up: a stat in a worker thread
                found = await asyncio.to_thread(lambda: files["cover"].is_file())
                return str(files["cover"]) if found and asset_id == "asset_cover" else None

            context.asset_file = asset_file
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = f"datetime,channel,text,media\n{at(2)},{x_id},The cover,asset_cover\n"
            answer = await asyncio.wait_for(upload(client, csv), 30)
            report = await answer.json()
            assert (report["scheduled"], report["errors"]) == (1, [])

    asyncio.run(go())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_file_naming_too_many_media_is_refused_before_any_look_up(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each medium is a library look-up and an ffprobe run: past the cap the file is a
    400 saying to split it, and nothing is looked up; an unreadable medium's error names
    the file, never the folder the server keeps it in."""
    monkeypatch.setattr(bulk_routes, "MAX_BULK_MEDIA", 3)
    broken = tmp_path / "kept" / "secret-folder" / "broken.wav"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really")
    asked: list[str] = []

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            async def asset_file(account_id: str, asset_id: str) -> str | None:
                asked.append(asset_id)
                return str(broken)

            context.asset_file = asset_file
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            rows = "".join(f"{at(2)},{x_id},Post {n},asset_{n}\n" for n in range(4))
            answer = await upload(client, "datetime,channel,text,media\n" + rows)
            assert answer.status == 400
            assert "4 different media" in (await answer.json())["error"]
            assert asked == []

            one = f"datetime,channel,text,media\n{at(2)},{x_id},Broken,asset_0\n"
            report = await (await upload(client, one)).json()
            [error] = report["errors"]
            assert (error["code"], report["scheduled"]) == ("unreadable_media", 0)
            assert "broken.wav" in error["message"]
            assert "secret-folder" not in error["message"]

    asyncio.run(go())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_media_not_read_in_time_are_refused_in_their_rows(
        tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review R3 #6: an asset that takes too long to read (object storage crawling)
    cannot hold the upload for ever: past MEDIA_LOOKUP_S its rows are refused with
    ``media_timeout`` and the other rows are scheduled."""
    monkeypatch.setattr(bulk_routes, "MEDIA_LOOKUP_S", 1.0)
    files = media_files(tmp_path / "files")

    async def go() -> None:
        x = InTestNetwork("x")
        async with social_app(tmp_path, db_url, x) as (client, context):
            async def asset_file(account_id: str, asset_id: str) -> str | None:
                if asset_id == "asset_slow":
                    await asyncio.sleep(30)
                return str(files["cover"])

            context.asset_file = asset_file
            x_id = (await connect(client, x, "acc", "p_dee"))["channel_id"]
            csv = ("datetime,channel,text,media\n"
                   f"{at(2)},{x_id},Slow,asset_slow\n"
                   f"{at(2)},{x_id},Quick,asset_cover\n")
            report = await (await asyncio.wait_for(upload(client, csv), 20)).json()
            assert [(e["row"], e["code"]) for e in report["errors"]] == [
                (2, "media_timeout")]
            assert report["scheduled"] == 1

    asyncio.run(go())
