"""POST /projects/{id}/automation/write: a pass going on after a touch was released keeps
what peers did in the lane there since (it no longer erases or restores that stretch)."""

from __future__ import annotations

import pytest
from test_automation_api import RATE, Api, api  # noqa: F401

from dawserver.keys import ROOMS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]


async def test_peer_edits_in_a_released_touch_survive_later_batches(api: Api) -> None:  # noqa: F811
    batch = {"pass_id": "pa", "track": "t1", "param": "gain_db", "start": 0}
    status, _ = await api.write(**batch, events=[[4800, -20.0, True], [9600, -20.0, False]],
                                now=9600)  # a touch, released: playback goes on
    assert status == 200
    added: list[str] = []
    async with api.app[ROOMS].use(api.project) as room:
        await room.edit(lambda d: added.append(
            d.add_automation_point("t1", "gain_db", 7000, -3.0)))
        await room.edit(lambda d: d.move_automation_point("t1", "gain_db", "pa.9600.b",
                                                          value=-10.0))
    status, _ = await api.write(**batch, events=[], now=RATE * 2)
    assert status == 200
    status, body = await api.write(**batch, events=[], stop=RATE * 3)
    assert status == 200 and body["done"]
    async with api.app[ROOMS].use(api.project) as room:
        points = room.document.automation("t1")["gain_db"]["points"]
    assert points[added[0]] == {"frame": 7000, "value": -3.0, "curve": "linear"}
    assert points["pa.9600.b"]["value"] == -10.0


async def test_a_new_touch_of_the_pass_still_replaces_what_is_under_it(api: Api) -> None:  # noqa: F811
    batch = {"pass_id": "pb", "track": "t1", "param": "gain_db", "start": 0}
    await api.write(**batch, events=[[4800, -20.0, True], [9600, -20.0, False]], now=9600)
    added: list[str] = []
    async with api.app[ROOMS].use(api.project) as room:
        await room.edit(lambda d: added.append(
            d.add_automation_point("t1", "gain_db", 40000, -3.0)))
    status, _ = await api.write(**batch, events=[[36000, -6.0, True], [44000, -6.0, False]],
                                stop=44000)
    assert status == 200
    async with api.app[ROOMS].use(api.project) as room:
        points = room.document.automation("t1")["gain_db"]["points"]
    assert added[0] not in points and "pb.4800.b" in points


async def test_a_pass_looping_back_over_its_released_touch_writes_the_new_lap(
        api: Api) -> None:  # noqa: F811
    """The second lap makes the same point ids as the first (same frames): they are the
    new lap's to write, not settled points to leave alone."""
    batch = {"pass_id": "pc", "track": "t1", "param": "gain_db", "start": 0}
    await api.write(**batch, events=[[4800, -20.0, True], [9600, -20.0, False]], now=9600)
    status, _ = await api.write(**batch, events=[[4800, -6.0, True], [9600, -6.0, False]],
                                now=9600)  # playback looped back to 4800
    assert status == 200
    status, _ = await api.write(**batch, events=[], stop=RATE)
    assert status == 200
    async with api.app[ROOMS].use(api.project) as room:
        points = room.document.automation("t1")["gain_db"]["points"]
    held = {k: p["value"] for k, p in points.items() if k.endswith(".b")}
    assert held == {"pc.4800.b": -6.0, "pc.9600.b": -6.0}, points


async def test_a_lane_set_to_off_mid_pass_stops_the_pass_writing_there(
        api: Api) -> None:  # noqa: F811
    """A peer turns the lane off while a latch pass writes it: the pass ends at what it
    had written (``done``), and its later moves write nothing, as Pro Tools stops."""
    batch = {"pass_id": "pd", "track": "t1", "param": "gain_db", "start": 0}
    async with api.app[ROOMS].use(api.project) as room:
        await room.edit(lambda d: d.set_automation_mode("t1", "gain_db", "latch"))
    status, body = await api.write(**batch, events=[[4800, -20.0, True], [9600, -12.0, True]],
                                   now=9600)
    assert status == 200 and not body["done"]
    async with api.app[ROOMS].use(api.project) as room:
        await room.edit(lambda d: d.set_automation_mode("t1", "gain_db", "off"))
    status, body = await api.write(**batch, events=[[20000, 3.0, True]], now=RATE)
    assert status == 200 and body["done"], body
    status, body = await api.write(**batch, events=[[30000, 6.0, True]], stop=RATE * 2)
    assert status == 200 and body["changed"] == 0, body
    async with api.app[ROOMS].use(api.project) as room:
        points = room.document.automation("t1")["gain_db"]["points"]
    frames = sorted(p["frame"] for p in points.values())
    assert frames[-1] <= 9600 + RATE // 4 and 3.0 not in {p["value"] for p in points.values()}
