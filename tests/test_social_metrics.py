"""Each connector reads a published post's metrics from its network's fake, in the
network's own shape: the metrics it reports by our names (missing ones left out, never
0), deterministic per post and growing with its age, and failing like the network."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from social_fakes import make_media, publication, sign_in, social_network

from business.social.errors import RateLimited, TokenExpired
from business.social.networks import CONNECTORS
from business.social.networks.base import METRICS, MediaItem, reported, total

NETWORKS = sorted(CONNECTORS)
#: What each network reports for a text (or image, or video) post, by our names.
REPORTS = {
    "x": {"impressions", "likes", "comments", "shares", "clicks"},
    "instagram": {"impressions", "reach", "likes", "comments", "shares"},
    "facebook": {"impressions", "reach", "clicks"},
    "threads": {"impressions", "likes", "comments", "shares"},
    "tiktok": {"likes", "comments", "shares", "video_views"},
    "youtube": {"video_views", "likes", "comments"},
    "linkedin": {"likes", "comments"},
    "bluesky": {"likes", "comments", "shares"},
}
DAY = 86400.0


def run(coro, timeout: float = 20.0):  # noqa: ANN001, ANN201 - a coroutine and its result
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


@pytest.fixture
def media(tmp_path: Path) -> dict[str, MediaItem]:
    return make_media(tmp_path)


def test_counts_are_read_by_our_names_and_missing_ones_stay_out() -> None:
    assert reported(likes="12", comments=None, shares=0) == {"likes": 12, "shares": 0}
    assert total(None, None) is None
    assert total(3, None, "2") == 5


@pytest.mark.parametrize("network", NETWORKS)
def test_metrics_are_the_networks_own_deterministic_and_growing(
        network: str, media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            published = await net.connector.publish(
                token, publication(network, media, f"metrics on {network}"))
            now = time.time()
            net.fake.clock = lambda: now
            first = await net.connector.metrics(token, published.remote_id)
            assert set(first) == REPORTS[network] and set(first) <= set(METRICS)
            assert all(isinstance(v, int) and v > 0 for v in first.values()), first
            assert await net.connector.metrics(token, published.remote_id) == first
            net.fake.clock = lambda: now + 2 * DAY
            later = await net.connector.metrics(token, published.remote_id)
            assert set(later) == set(first)
            assert all(later[k] >= first[k] for k in first)
            assert sum(later.values()) > sum(first.values())
    run(go())


@pytest.mark.parametrize("network", NETWORKS)
def test_metrics_fail_like_the_network(network: str, media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network(network) as net:
            token = (await sign_in(net)).access_token
            published = await net.connector.publish(
                token, publication(network, media, f"failing metrics on {network}"))
            net.fake.fail(429, times=1, retry_after=7)
            with pytest.raises(RateLimited) as caught:
                await net.connector.metrics(token, published.remote_id)
            assert caught.value.retry_after is not None and caught.value.retry_after >= 1
            net.fake.expire_tokens()
            with pytest.raises(TokenExpired):
                await net.connector.metrics(token, published.remote_id)
    run(go())


def test_per_post_factors_differ_between_posts() -> None:
    from business.social.fakes import FAKES

    fake = FAKES["bluesky"]()
    fake.clock = lambda: 1_000_000.0
    weights = {"likeCount": 50, "repostCount": 50}
    one = fake.counts("at://did/app.bsky.feed.post/1", 1_000_000.0, weights)
    assert one == fake.counts("at://did/app.bsky.feed.post/1", 1_000_000.0, weights)
    others = {tuple(fake.counts(f"at://did/app.bsky.feed.post/{i}", 1_000_000.0,
                                weights).values()) for i in range(2, 12)}
    assert len(others | {tuple(one.values())}) > 5


def test_x_link_clicks_are_missing_after_30_days_not_zero(
        media: dict[str, MediaItem]) -> None:
    async def go() -> None:
        async with social_network("x") as net:
            token = (await sign_in(net)).access_token
            published = await net.connector.publish(token, publication("x", media, "old"))
            now = time.time()
            net.fake.clock = lambda: now + 31 * DAY
            metrics = await net.connector.metrics(token, published.remote_id)
            assert "clicks" not in metrics and metrics["impressions"] > 0
    run(go())


def test_facebook_video_views_only_for_a_video(media: dict[str, MediaItem]) -> None:
    from business.social.networks.base import Publication

    async def go() -> None:
        async with social_network("facebook") as net:
            token = (await sign_in(net)).access_token
            video = await net.connector.publish(token, Publication(
                "p:c", "a clip", media=(media["video"],)))
            metrics = await net.connector.metrics(token, video.remote_id)
            assert metrics["video_views"] > 0 and metrics["impressions"] > 0
    run(go())
