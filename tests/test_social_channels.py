"""Channels: connecting through OAuth (PKCE, state), tokens sealed at rest, the refresh
rule under races, dead grants flagged with a reconnect link, key rotation."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from social_helpers import (
    InTestNetwork,
    Recorder,
    connect,
    migrated,
    social_app,
    who,
)

from business.social.channels import Channels
from business.social.errors import ConflictError, NetworkError, Rejected, SocialError
from business.social.models import ChannelTokens
from business.social.networks.base import OAuthTokens
from business.social.services import TOKEN_KEY_PURPOSE, services
from business.social.store import SocialStore
from business.social.tokens import TokenBox, merge_refresh
from database import open_database

pytestmark = pytest.mark.timeout(120)
KEY = Fernet.generate_key()


def later(seconds: float):  # noqa: ANN201
    """A clock ``seconds`` ahead of now (tokens age without waiting)."""
    return lambda: time.time() + seconds


async def _channels(db, network: InTestNetwork, box: TokenBox | None = None,  # noqa: ANN001
                    **options: object) -> tuple[Channels, Recorder]:
    recorder = Recorder()
    return Channels(SocialStore(db), box or TokenBox([KEY]), {network.network: network},
                    recorder, base_url="https://studio.example", **options), recorder


async def _connected(channels: Channels, network: InTestNetwork, account: str = "acc"
                     ) -> str:
    url = await channels.begin(account, "p_ada", network.network)
    state = url.split("state=")[1].split("&")[0]
    channel = await channels.finish(network.network, state, network.grant(state))
    return channel.channel_id


def test_a_channel_connects_through_oauth_and_its_tokens_never_show(tmp_path: Path,
                                                                   db_url: str) -> None:
    network = InTestNetwork("x")

    async def go() -> None:
        async with social_app(tmp_path, db_url, network) as (client, context):
            channel = await connect(client, network, "acc", "p_ada")
            assert (channel["network"], channel["handle"], channel["state"]) == (
                "x", "@ada", "active")
            assert channel["connected_by"] == "p_ada"
            listed = await (await client.get("/api/social/channels",
                                             headers=who("acc", "p_ada"))).text()
            assert channel["channel_id"] in listed
            stored = await context.database().fetchrow(
                "SELECT access_token, refresh_token FROM social_channels WHERE account_id = ?",
                "acc")
            live = next(iter(network.live_refresh))
            assert live not in stored["refresh_token"] and live not in listed  # sealed, hidden
            box = TokenBox.from_secret(context.derive_key(TOKEN_KEY_PURPOSE))
            assert box.open(stored["refresh_token"]) == live  # the server's derived key
            # connecting the same network account again keeps one channel
            again = await connect(client, network, "acc", "p_ada")
            assert again["channel_id"] == channel["channel_id"]
            other = await client.get(f"/api/social/channels/{channel['channel_id']}",
                                     headers=who("eve", "p_eve"))
            assert other.status == 404
            gone = await client.delete(f"/api/social/channels/{channel['channel_id']}",
                                       headers=who("eve", "p_eve"))
            assert gone.status == 404
            viewer = await client.get("/api/social/channels/connect/x",
                                      headers=who("acc", "p_bo", "viewer"),
                                      allow_redirects=False)
            assert viewer.status == 403

    asyncio.run(go())


def test_a_callback_with_a_used_or_unknown_state_is_refused(tmp_path: Path) -> None:
    network = InTestNetwork("x")

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.db'}", network) as (
                client, _):
            start = await client.get("/api/social/channels/connect/x",
                                     headers=who("acc", "p_ada"), allow_redirects=False)
            location = start.headers["Location"]
            assert "code_challenge_method=S256" in location
            state = location.split("state=")[1].split("&")[0]
            code = network.grant(state)
            first = await client.get("/api/social/channels/callback/x",
                                     params={"state": state, "code": code},
                                     allow_redirects=False)
            assert first.status == 302
            replay = await client.get("/api/social/channels/callback/x",
                                      params={"state": state, "code": code},
                                      allow_redirects=False)
            assert replay.status == 400
            assert "start connecting the channel again" in (await replay.json())["error"]
            forged = await client.get("/api/social/channels/callback/x",
                                      params={"state": "made-up", "code": "c"},
                                      allow_redirects=False)
            assert forged.status == 400
            unknown = await client.get("/api/social/channels/connect/myspace",
                                       headers=who("acc", "p_ada"), allow_redirects=False)
            assert unknown.status == 404
            assert "not configured" in (await unknown.json())["error"]

    asyncio.run(go())


def test_concurrent_refreshes_of_one_channel_call_the_network_once(db_url: str) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)   # inside the 300 s margin: due

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrated(db)
            first, _ = await _channels(db, network)
            channel_id = await _connected(first, network)
            first.clock = later(40)                    # past half the token's life
            second, _ = await _channels(db, network, clock=later(40))  # another process
            network.delays = [0.2, 0.2, 0.2, 0.2]
            results = await asyncio.gather(*(
                c.refresh("acc", channel_id) for c in (first, second, first, second)))
            assert network.refresh_calls == 1
            assert {r.token_generation for r in results} == {2}
            sealed = await first.store.sealed_tokens("acc", channel_id)
            held = first.box.open(sealed.refresh_token)
            assert network.live_refresh == {held}   # the rotated token, which still works
            await first.refresh("acc", channel_id, force=True)
            assert network.refresh_calls == 2

    asyncio.run(go())


def test_a_late_answer_never_overwrites_a_newer_refresh_token(db_url: str) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)
    network.revoke_used = False

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrated(db)
            slow, _ = await _channels(db, network, lease_s=0.05)
            channel_id = await _connected(slow, network)

            async def paused(*_: object) -> bool:  # a stalled process renews nothing
                return True

            slow.store.renew_refresh = paused
            slow.clock = later(40)
            fast, _ = await _channels(db, network, lease_s=0.05, clock=later(40))
            network.delays = [0.5]                   # the first refresh answers late
            late = asyncio.create_task(slow.refresh("acc", channel_id))
            await asyncio.sleep(0.2)                 # its lease has passed
            await fast.refresh("acc", channel_id)
            stored = fast.box.open((await fast.store.sealed_tokens("acc", channel_id)
                                    ).refresh_token)
            await late
            after = await fast.store.sealed_tokens("acc", channel_id)
            assert fast.box.open(after.refresh_token) == stored   # the late one lost
            assert after.generation == 2 and network.refresh_calls == 2

    asyncio.run(go())


def test_a_refresh_without_a_refresh_token_keeps_the_one_held(db_url: str) -> None:
    network = InTestNetwork("x", lifetime_s=60.0, rotate=False)

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrated(db)
            channels, _ = await _channels(db, network)
            channel_id = await _connected(channels, network)
            channels.clock = later(40)
            before = await channels.store.sealed_tokens("acc", channel_id)
            await channels.refresh("acc", channel_id)
            after = await channels.store.sealed_tokens("acc", channel_id)
            assert channels.box.open(after.refresh_token) == channels.box.open(
                before.refresh_token) != ""
            assert channels.box.open(after.access_token) != channels.box.open(
                before.access_token)
            assert after.generation == before.generation + 1

    asyncio.run(go())


def test_the_refresh_rule_takes_any_sent_refresh_token_and_never_an_empty_one() -> None:
    held = ChannelTokens("a1", "r1", 100.0, "post", 3, 50.0, 50.0)
    empty = merge_refresh(held, OAuthTokens("a2", "", 200.0), 60.0).tokens
    assert (empty.access_token, empty.refresh_token, empty.generation) == ("a2", "r1", 4)
    none = merge_refresh(held, OAuthTokens("a2", None, 200.0), 60.0)
    assert none.tokens.refresh_token == "r1" and not none.refresh_replaced
    newer = merge_refresh(held, OAuthTokens("a3", "r3", 300.0), 70.0)
    assert (newer.tokens.refresh_token, newer.tokens.refresh_issued_at) == ("r3", 70.0)
    assert newer.refresh_replaced


def test_a_rotated_refresh_token_is_kept_when_this_clock_is_behind_the_last_one() -> None:
    # the held tokens were refreshed by a process whose clock runs ahead (50.0); this
    # process's refresh answers at 40.0 by its own clock, after the network rotated
    held = ChannelTokens("a1", "r1", 100.0, "post", 3, 50.0, 50.0)
    merged = merge_refresh(held, OAuthTokens("a2", "r2", 90.0), 40.0)
    assert (merged.tokens.access_token, merged.tokens.refresh_token) == ("a2", "r2")
    assert merged.tokens.expires_at == 90.0 and merged.tokens.generation == 4
    assert merged.refresh_replaced


def test_a_dead_grant_flags_the_channel_and_tells_the_owner(tmp_path: Path,
                                                           db_url: str) -> None:
    network = InTestNetwork("x")

    async def go() -> None:
        async with social_app(tmp_path, db_url, network) as (client, context):
            channel = await connect(client, network, "acc", "p_ada")
            path = f"/api/social/channels/{channel['channel_id']}"
            network.fail_refresh = NetworkError("HTTP 503", network="x", status=503)
            busy = await client.post(f"{path}/refresh", headers=who("acc", "p_ada"))
            assert busy.status == 503
            still = await (await client.get(path, headers=who("acc", "p_ada"))).json()
            assert still["state"] == "active" and "503" in still["last_error"]
            network.fail_refresh = Rejected("invalid_grant: refresh token revoked",
                                            network="x", status=400)
            dead = await (await client.post(f"{path}/refresh",
                                             headers=who("acc", "p_ada"))).json()
            assert dead["state"] == "needs_reconnect"
            assert dead["reconnect_url"] == (
                "https://studio.example/api/social/channels/connect/x?account=acc"
                f"&channel_id={channel['channel_id']}")
            rows = await context.database().fetch(
                "SELECT name, payload FROM events_outbox WHERE account_id = ?", "acc")
            assert [r["name"] for r in rows] == ["social.channel_needs_reconnect"]
            assert channel["channel_id"] in rows[0]["payload"]
            network.fail_refresh = None
            back = await connect(client, network, "acc", "p_ada",
                                 channel_id=channel["channel_id"])
            assert (back["channel_id"], back["state"]) == (channel["channel_id"], "active")
            audit = await services(context).store.audit_of("acc",
                                                           f"channel:{channel['channel_id']}")
            assert [a["action"] for a in audit] == [
                "channel.connected", "channel.needs_reconnect", "channel.reconnected"]

    asyncio.run(go())


def test_the_refresh_sweep_refreshes_only_what_expires_soon(tmp_path: Path) -> None:
    soon, slow = InTestNetwork("x", lifetime_s=100.0), InTestNetwork("bluesky")

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 's.db'}") as db:
            await migrated(db)
            recorder = Recorder()
            channels = Channels(SocialStore(db), TokenBox([KEY]),
                                {"x": soon, "bluesky": slow}, recorder)
            await _connected(channels, soon)
            await _connected(channels, slow)
            assert await channels.refresh_due() == 0   # both young
            channels.clock = later(60)                 # x's 100 s token is past half
            assert await channels.refresh_due() == 1
            assert (soon.refresh_calls, slow.refresh_calls) == (1, 0)
            assert await channels.refresh_due() == 0   # its new token is young again

    asyncio.run(go())


def test_tokens_are_resealed_under_a_new_key_before_the_old_one_goes(tmp_path: Path) -> None:
    network = InTestNetwork("x")
    new = Fernet.generate_key()

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 's.db'}") as db:
            await migrated(db)
            old, _ = await _channels(db, network, TokenBox([KEY]))
            channel_id = await _connected(old, network)
            plain = old.box.open((await old.store.sealed_tokens("acc", channel_id)
                                  ).refresh_token)
            rotating, _ = await _channels(db, network, TokenBox([new, KEY]))
            assert await rotating.reseal_all() == 1
            only_new = TokenBox([new])
            sealed = await rotating.store.sealed_tokens("acc", channel_id)
            assert only_new.open(sealed.refresh_token) == plain
            with pytest.raises(SocialError, match="cannot be read"):
                TokenBox([KEY]).open(sealed.refresh_token)
        with pytest.raises(SocialError, match="not a Fernet key"):
            TokenBox(["short"])

    asyncio.run(go())


def test_a_disconnected_channel_forgets_its_tokens(tmp_path: Path) -> None:
    network = InTestNetwork("x")

    async def go() -> None:
        async with social_app(tmp_path, f"sqlite://{tmp_path / 's.db'}", network) as (
                client, context):
            channel = await connect(client, network, "acc", "p_ada")
            gone = await client.delete(f"/api/social/channels/{channel['channel_id']}",
                                       headers=who("acc", "p_ada"))
            assert (await gone.json())["state"] == "disconnected"
            row = await context.database().fetchrow(
                "SELECT access_token, refresh_token FROM social_channels")
            assert row == {"access_token": "", "refresh_token": ""}
            listed = await (await client.get("/api/social/channels",
                                             headers=who("acc", "p_ada"))).json()
            assert listed == []

    asyncio.run(go())


class NoNewRefresh(InTestNetwork):
    """A network whose code exchange sends no refresh token once the app holds one (as
    Google does when the user consents again without being asked to)."""

    def __init__(self) -> None:
        super().__init__("youtube")
        self.withhold = False

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        answer = await super().exchange_code(code, code_verifier, redirect_uri)
        return OAuthTokens(answer.access_token, None, answer.expires_at, answer.scope) \
            if self.withhold else answer


def test_a_reconnect_without_a_refresh_token_keeps_the_one_held(tmp_path: Path,
                                                                 db_url: str) -> None:
    network = NoNewRefresh()

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrated(db)
            channels, _ = await _channels(db, network)
            channel_id = await _connected(channels, network)
            held = await channels.store.sealed_tokens("acc", channel_id)
            assert held is not None
            refresh = channels.box.open(held.refresh_token)
            assert refresh in network.live_refresh

            network.withhold = True
            url = await channels.begin("acc", "p_ada", network.network, channel_id)
            state = url.split("state=")[1].split("&")[0]
            again = await channels.finish(network.network, state, network.grant(state))
            assert (again.channel_id, again.state) == (channel_id, "active")
            after = await channels.store.sealed_tokens("acc", channel_id)
            assert after is not None
            assert channels.box.open(after.refresh_token) == refresh  # never made empty
            assert after.refresh_issued_at == held.refresh_issued_at
            assert channels.box.open(after.access_token) != channels.box.open(
                held.access_token)  # the new grant's access token

            refreshed = await channels.refresh("acc", channel_id, force=True)
            assert refreshed.state == "active" and network.refresh_calls == 1

    asyncio.run(go())


def test_a_channel_without_a_refresh_token_is_flagged_once_its_token_expired(
        db_url: str) -> None:
    network = NoNewRefresh()
    network.withhold = True  # no refresh token from the first connect on

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrated(db)
            channels, recorder = await _channels(db, network, margin_s=600.0)
            channel_id = await _connected(channels, network)
            with pytest.raises(ConflictError):  # not expired yet: still usable, no refresh
                await channels.refresh("acc", channel_id, force=True)
            assert (await channels.get("acc", channel_id)).state == "active"

            channels.clock = later(3600 + 1)  # its access token has expired
            assert await channels.refresh_due() == 1
            dead = await channels.get("acc", channel_id)
            assert dead.state == "needs_reconnect" and "no refresh token" in dead.last_error
            [event] = [e for e in recorder.events
                       if e[0] == "social.channel_needs_reconnect"]
            assert event[1]["reconnect_url"] == channels.reconnect_url("acc", dead)
            assert await channels.refresh_due() == 0  # told once
            assert network.refresh_calls == 0

    asyncio.run(go())


def test_a_slow_refresh_keeps_its_lease_so_no_other_spends_the_refresh_token(
        db_url: str) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)   # rotates: a used token is spent

    async def go() -> None:
        async with open_database(db_url) as db, asyncio.timeout(30):
            await migrated(db)
            slow, _ = await _channels(db, network, lease_s=0.3)
            channel_id = await _connected(slow, network)
            other, _ = await _channels(db, network, lease_s=2.0)   # another process
            network.delays = [1.0]                   # processed now, answered late
            late = asyncio.create_task(slow.refresh("acc", channel_id, force=True))
            await asyncio.sleep(0.6)                 # twice the slow one's lease
            waited = await other.refresh("acc", channel_id, force=True)
            answered = await late
            assert (waited.state, answered.state) == ("active", "active")
            assert network.refresh_calls == 1
            assert (await other.get("acc", channel_id)).token_generation == 2

    asyncio.run(go())


def test_a_refresh_without_an_answer_gives_its_lease_back_and_is_retryable(
        db_url: str) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)

    async def go() -> None:
        async with open_database(db_url) as db, asyncio.timeout(30):
            await migrated(db)
            channels, _ = await _channels(db, network, refresh_timeout_s=0.2)
            channel_id = await _connected(channels, network)
            network.delays = [600.0]                 # the answer never comes
            with pytest.raises(NetworkError, match="no answer") as raised:
                await channels.refresh("acc", channel_id, force=True)
            assert raised.value.retryable
            row = await db.fetchrow("SELECT refresh_lease, state FROM social_channels "
                                    "WHERE channel_id = ?", channel_id)
            assert (row["refresh_lease"], row["state"]) == ("", "active")

    asyncio.run(go())
