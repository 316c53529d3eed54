"""The network connectors against their fakes: OAuth with PKCE, publishing, finding a post
again, and every way a network fails mapped to the errors the dispatcher acts on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest
from social_fakes import (
    REDIRECT_URI,
    authorize,
    make_media,
    publication,
    sign_in,
    social_network,
)

from business.social.errors import (
    Duplicate,
    NetworkError,
    QuotaExhausted,
    RateLimited,
    Rejected,
    TokenExpired,
)
from business.social.networks import CONNECTORS, connector_for
from business.social.networks.base import (
    METRICS,
    MediaItem,
    Publication,
    new_code_verifier,
    text_with_link,
)
from business.social.networks.http import CLOCK_SKEW_S, remote_time, sent_since
from business.social.validation import errors, validate

NETWORKS = sorted(CONNECTORS)
OAUTH = [n for n in NETWORKS if n != "bluesky"]
#: Networks whose refresh tokens are real (Meta's long-lived tokens are re-exchanged).
REFRESHING = ["bluesky", "linkedin", "tiktok", "x", "youtube"]
META = ["facebook", "instagram", "threads"]
#: Networks that refuse the same text twice (the others accept it, as the real ones do).
DUPLICATE_ERRORS = ["facebook", "linkedin", "x"]


def run(coro, timeout: float = 20.0):  # noqa: ANN001, ANN201 - a coroutine and its result
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


@pytest.fixture
def media(tmp_path: Path) -> dict[str, MediaItem]:
    return make_media(tmp_path)


def test_every_network_has_a_connector_and_a_fake() -> None:
    from business.social.fakes import FAKES

    assert set(CONNECTORS) == set(FAKES) == {"x", "instagram", "facebook", "tiktok",
                                             "youtube", "linkedin", "threads", "bluesky"}


def test_an_unknown_network_is_refused_with_the_known_ones_named() -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ValueError, match="bluesky, facebook"):
                connector_for("myspace", None, "id", "secret", session)
    run(go())


@pytest.mark.parametrize("network", OAUTH)
def test_oauth_with_pkce_refuses_a_wrong_verifier_and_a_reused_code(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            verifier = new_code_verifier()
            code = await authorize(net, verifier)
            with pytest.raises(Rejected):
                await net.connector.exchange_code(code, new_code_verifier(), REDIRECT_URI)
            code = await authorize(net, verifier)
            tokens = await net.connector.exchange_code(code, verifier, REDIRECT_URI)
            assert tokens.access_token and tokens.expires_at > time.time()
            with pytest.raises(Rejected):  # codes are single use
                await net.connector.exchange_code(code, verifier, REDIRECT_URI)
            net.fake.expire_codes()
            code = await authorize(net, verifier)
            net.fake.expire_codes()
            with pytest.raises(Rejected):
                await net.connector.exchange_code(code, verifier, REDIRECT_URI)
            profile = await net.connector.profile(tokens.access_token)
            assert profile["id"] and profile["name"]
    run(go())


def test_bluesky_signs_in_with_an_app_password_and_refuses_a_wrong_one() -> None:
    from business.social.networks.bluesky import credentials

    async def go() -> None:
        async with social_network("bluesky") as net:
            with pytest.raises(TokenExpired):
                await net.connector.exchange_code(
                    credentials(net.fake.user.handle, "wrong-pass-word-1234"), "", "")
            with pytest.raises(Rejected, match="app password"):
                await net.connector.exchange_code("no-password-given", "", "")
            tokens = await sign_in(net)
            assert tokens.refresh_token and tokens.expires_at > time.time() + 3600
            assert (await net.connector.profile(tokens.access_token))["id"].startswith("did:")
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_a_post_is_published_and_found_again_by_its_dedupe_key(
        network: str, media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            text = f"New single out Friday on {network} #beats"
            post = publication(network, media, text)
            published = await net.connector.publish(token, post)
            assert published.remote_id and published.url.startswith("https://")
            assert len(net.fake.posts) == 1
            found = await net.connector.find_published(token, post.dedupe_key, text=text)
            assert found == published
            assert await net.connector.find_published(token, "post-2:channel-1",
                                                      text="another post") is None
            metrics = await net.connector.metrics(token, published.remote_id)
            assert metrics and set(metrics) <= set(METRICS)
            assert all(isinstance(v, int) and v > 0 for v in metrics.values()), metrics
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_429_becomes_rate_limited_with_the_wait_the_network_gave(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            net.fake.fail(429, times=1, retry_after=3)
            with pytest.raises(RateLimited) as caught:
                await net.connector.profile(token)
            assert caught.value.retryable
            # Meta gives the wait in whole minutes (X-Business-Use-Case-Usage)
            assert 2.0 <= caught.value.retry_after <= 60.0
            assert (await net.connector.profile(token))["id"]
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_an_expired_token_becomes_token_expired_then_refresh_fixes_it(
        network: str, media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            tokens = await sign_in(net)
            net.fake.expire_tokens()
            post = publication(network, media, "Out now")
            with pytest.raises(TokenExpired) as caught:
                await net.connector.publish(tokens.access_token, post)
            assert not caught.value.retryable
            assert net.fake.posts == []
            if network in META:  # long-lived tokens must be exchanged before they expire
                return
            fresh = await net.connector.refresh(tokens.refresh_token)
            assert (await net.connector.publish(fresh.access_token, post)).remote_id
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_a_5xx_is_a_retryable_network_error(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            net.fake.fail(503, times=2)
            for _ in range(2):
                with pytest.raises(NetworkError) as caught:
                    await net.connector.profile(token)
                assert type(caught.value) is NetworkError and caught.value.retryable
            assert (await net.connector.profile(token))["id"]
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_an_unreachable_network_is_a_retryable_network_error(network: str) -> None:
    from loopback import free_port

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            connector = connector_for(network, f"http://127.0.0.1:{free_port()}", "id",
                                      "secret", session)
            with pytest.raises(NetworkError) as caught:
                await connector.profile("token")
            assert caught.value.retryable and "ClientConnectorError" in str(caught.value)
    run(go())


@pytest.mark.parametrize("network", ["facebook", "instagram", "linkedin", "threads", "tiktok",
                                     "x"])
def test_a_post_matched_by_text_must_be_created_since_the_first_attempt(
        network: str, media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            text = f"Live now on {network}: come hang out"
            post = publication(network, media, text)
            started = time.time()
            published = await net.connector.publish(token, post)
            found = await net.connector.find_published(token, post.dedupe_key, text=text,
                                                       since=started)
            assert found == published
            later = started + CLOCK_SKEW_S + 3600    # an attempt begun after it was made
            assert await net.connector.find_published(token, post.dedupe_key, text=text,
                                                      since=later) is None
    run(go())


def test_a_remote_post_without_a_created_time_is_never_taken_for_a_retried_one() -> None:
    now = time.time()
    assert remote_time("2031-05-02T16:30:00+0000") == remote_time("2031-05-02T16:30:00.000Z")
    assert remote_time(1_800_000_000_000, millis=True) == 1_800_000_000.0
    assert remote_time(None) is None and remote_time("last week") is None
    assert sent_since(None, now) is False
    assert sent_since(now - CLOCK_SKEW_S + 1, now) is True
    assert sent_since(now - CLOCK_SKEW_S - 1, now) is False
    assert sent_since(None, None) is True    # no bound asked (the connectors' own lookup)


@pytest.mark.parametrize("network", DUPLICATE_ERRORS)
def test_the_same_text_twice_is_a_duplicate_that_names_the_first_post(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            post = Publication("post-1:channel-1", "Studio session tonight")
            first = await net.connector.publish(token, post)
            with pytest.raises(Duplicate) as caught:
                await net.connector.publish(token, post)
            assert not caught.value.retryable
            assert caught.value.existing == first
            assert len(net.fake.posts) == 1
    run(go())


@pytest.mark.parametrize("network", sorted(set(NETWORKS) - set(DUPLICATE_ERRORS)))
def test_networks_without_a_duplicate_error_have_no_such_fake_failure(network: str) -> None:
    from business.social.fakes import FAKES

    with pytest.raises(ValueError, match="no failure kind 'duplicate'"):
        FAKES[network]().fail(kind="duplicate")


def test_youtube_uploads_resumably_and_spends_its_unit_quota(
        media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network("youtube") as net:
            net.connector.chunk_bytes = 256 * 1024  # 600 KB in three PUTs, two 308s
            token = (await sign_in(net)).access_token
            net.fake.units_used = 0
            post = publication("youtube", media, "Beat tape vol. 2\nFull tape below")
            published = await net.connector.publish(token, post)
            video = net.fake.posts[0]
            assert video["snippet"]["title"] == "Beat tape vol. 2"
            assert net.fake.units_used == 1_600
            assert (await net.connector.quota(token)).used == 1_600
            net.fake.units_used = 10_000 - 1_000
            other = publication("youtube", media, "Second", key="post-2:channel-1")
            with pytest.raises(QuotaExhausted) as caught:
                await net.connector.publish(token, other)
            assert caught.value.retryable and 0 < caught.value.retry_after <= 25 * 3600
            assert len(net.fake.posts) == 1
            assert (await net.connector.find_published(token, post.dedupe_key)) == published
    run(go())


@pytest.mark.parametrize("network", ["instagram", "threads"])
def test_the_rolling_publishing_limit_is_read_and_enforced(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            net.fake.publish_limit = 2
            token = (await sign_in(net)).access_token
            net.connector.media_url = lambda item: "https://assets.studio.example/a.jpg"
            tmp = Path(net.fake.network)  # unused media path: the fakes fetch no URL
            image = MediaItem("image", "image/jpeg", 1, str(tmp))
            for n in range(2):
                await net.connector.publish(token, Publication(f"p{n}:c", f"Post {n}",
                                                               (image,)))
            quota = await net.connector.quota(token)
            assert (quota.used, quota.limit, quota.left) == (2, 2, 0)
            with pytest.raises(QuotaExhausted) as caught:
                await net.connector.publish(token, Publication("p3:c", "Post 3", (image,)))
            assert caught.value.retry_after > 0
            assert len(net.fake.posts) == 2
    run(go())


def test_instagram_video_goes_up_resumably_and_waits_for_its_container(
        media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network("instagram") as net:
            token = (await sign_in(net)).access_token
            post = Publication("p:c", "Reel", (media["video"],), first_comment="#beats")
            await net.connector.publish(token, post)
            container = next(iter(net.fake.containers.values()))
            assert container["media"] == "REELS" and container["state"] == "PUBLISHED"
            assert net.fake.comments[0]["text"] == "#beats"
            carousel = Publication("p2:c", "Two", (media["image"], media["image"]))
            await net.connector.publish(token, carousel)
            assert net.fake.posts[-1]["media"] == "CAROUSEL"
    run(go())


def test_x_uploads_video_in_chunks_and_waits_for_processing(
        media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network("x") as net:
            net.connector.chunk_bytes = 256 * 1024
            token = (await sign_in(net)).access_token
            post = Publication("p:c", "Clip", (media["video"],), first_comment="Link below")
            published = await net.connector.publish(token, post)
            (uploaded,) = net.fake.media.values()
            assert len(uploaded["chunks"]) == 3 and uploaded["state"] == "succeeded"
            reply = net.fake.posts[-1]
            assert reply["reply_to"] == published.remote_id
    run(go())


def test_tiktok_daily_cap_is_quota_exhausted(media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network("tiktok") as net:
            net.fake.daily_posts = 1
            token = (await sign_in(net)).access_token
            await net.connector.publish(token, publication("tiktok", media, "one"))
            with pytest.raises(QuotaExhausted):
                await net.connector.publish(token, publication("tiktok", media, "two", "k2"))
    run(go())


def test_x_monthly_usage_cap_is_quota_exhausted() -> None:
    async def go() -> None:
        async with social_network("x") as net:
            token = (await sign_in(net)).access_token
            net.fake.fail(kind="quota", retry_after=30)
            with pytest.raises(QuotaExhausted) as caught:
                await net.connector.publish(token, Publication("p:c", "hello"))
            assert 29 <= caught.value.retry_after <= 31
    run(go())


@pytest.mark.parametrize("network", REFRESHING)
def test_a_refresh_without_a_new_refresh_token_returns_none_to_keep_the_old(
        network: str) -> None:
    async def go() -> None:
        async with social_network(network, refresh_omit_rate=1.0) as net:
            tokens = await sign_in(net)
            fresh = await net.connector.refresh(tokens.refresh_token)
            assert fresh.refresh_token is None
            assert fresh.access_token != tokens.access_token
            assert (await net.connector.profile(fresh.access_token))["id"]
            again = await net.connector.refresh(tokens.refresh_token)  # the old one works
            assert again.access_token
    run(go())


@pytest.mark.parametrize("network", [n for n in REFRESHING if n != "youtube"])
def test_a_rotated_refresh_token_replaces_the_old_one(network: str) -> None:
    async def go() -> None:
        async with social_network(network, refresh_omit_rate=0.0) as net:
            tokens = await sign_in(net)
            fresh = await net.connector.refresh(tokens.refresh_token)
            assert fresh.refresh_token and fresh.refresh_token != tokens.refresh_token
            with pytest.raises((Rejected, TokenExpired)):
                await net.connector.refresh(tokens.refresh_token)
            assert (await net.connector.refresh(fresh.refresh_token)).access_token
    run(go())


@pytest.mark.parametrize("network", META)
def test_meta_long_lived_tokens_are_refreshed_by_exchange(network: str) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            tokens = await sign_in(net)
            assert tokens.refresh_token == tokens.access_token
            assert tokens.expires_at > time.time() + 50 * 86400
            fresh = await net.connector.refresh(tokens.refresh_token)
            assert fresh.access_token != tokens.access_token
            assert fresh.refresh_token == fresh.access_token
            assert (await net.connector.profile(fresh.access_token))["id"]
    run(go())


def test_failures_queued_through_the_admin_endpoint_are_answered_in_order() -> None:
    async def go() -> None:
        async with social_network("linkedin") as net:
            token = (await sign_in(net)).access_token
            async with net.session.post(f"{net.base_url}/_fake/fail", json={
                    "status": 429, "times": 2, "retry_after": 3}) as response:
                assert response.status == 200
            for _ in range(2):
                with pytest.raises(RateLimited):
                    await net.connector.profile(token)
            assert (await net.connector.profile(token))["id"]
            async with net.session.post(f"{net.base_url}/_fake/fail",
                                        json={"kind": "quota"}) as response:
                assert response.status == 400  # LinkedIn has no quota error to fake
    run(go())


def test_random_failures_repeat_with_the_same_seed() -> None:
    async def outcomes(seed: int) -> list[str]:
        async with social_network("bluesky", fail_rate=0.4, seed=seed) as net:
            token = (await sign_in(net)).access_token
            seen = []
            for _ in range(20):
                try:
                    await net.connector.profile(token)
                    seen.append("ok")
                except NetworkError as exc:
                    assert exc.retryable
                    seen.append(type(exc).__name__)
            return seen

    first, second = run(outcomes(7)), run(outcomes(7))
    assert first == second
    assert {"ok", "RateLimited", "NetworkError"} <= set(first)


def test_product_modules_never_import_the_fakes() -> None:
    root = Path(__file__).resolve().parents[1] / "business" / "social"
    for path in root.rglob("*.py"):
        if "fakes" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        assert "from business.social.fakes" not in text, path
        assert "import business.social.fakes" not in text, path


def test_a_link_is_published_where_validation_counted_it(media: dict[str, MediaItem]) -> None:
    """X has no link attachment: the link goes on a line of its own, as validation counts."""
    link = "https://maxbooster.example/presave/night-drive"
    text = "n" * (280 - 23 - 1)  # 280 with the link (23) and its line break
    assert errors(validate("x", text, [], link=link)) == []
    assert errors(validate("x", text + "n", [], link=link))

    async def go() -> None:
        async with social_network("x") as net:
            token = (await sign_in(net)).access_token
            post = Publication(dedupe_key="post-9:channel-1", text=text, link=link)
            await net.connector.publish(token, post)
            assert net.fake.posts[-1]["text"] == f"{text}\n{link}" == post.text_with_link()
    run(go())
    assert text_with_link(f"out now {link}", link) == f"out now {link}"  # not twice
    assert text_with_link("", link) == link
