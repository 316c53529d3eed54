"""Each top-level field of a GraphQL mutation is charged to the key's rate limit as one
REST write would be: a key cannot run more writes than its plan allows by packing them
into one request."""

from __future__ import annotations

from pathlib import Path

import pytest
from limits import parse
from public_api_helpers import ids, two_people
from smtp_server import SmtpServer

from dawserver.keys import RATE_LIMITER

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
GRAPHQL = "/api/graphql"


def creates(count: int, prefix: str) -> str:
    """A mutation of ``count`` aliased ``createProject`` fields."""
    fields = " ".join(f'p{n}: createProject(name: "{prefix} {n}") {{ id }}'
                      for n in range(count))
    return f"mutation {{ {fields} }}"


async def test_each_mutation_field_costs_one_request_and_over_the_limit_none_runs(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        # 4 requests a minute, so the test never races the clock
        app[RATE_LIMITER].plans = {"free": parse("4/minute"), "paid": parse("1000/second")}
        before = await ids(ada, "/api/v1/projects")  # 1 of 4

        status, answer, headers = await ada.call("POST", GRAPHQL,
                                                 {"query": creates(2, "Two")})
        assert status == 200 and not answer.get("errors"), answer  # 3 of 4
        assert headers["RateLimit"].startswith('"free";r=1;')

        # two more writes would be 5 of 4: refused as a request over the limit, and
        # neither runs
        status, problem, headers = await ada.call("POST", GRAPHQL,
                                                  {"query": creates(2, "More")})
        assert status == 429, problem
        assert "rate limit (free)" in problem["detail"]
        assert int(headers["Retry-After"]) >= 1
        assert headers["RateLimit-Policy"] == '"free";q=4;w=60'

        app[RATE_LIMITER].plans = {"free": parse("1000/second"), "paid": parse("1000/second")}
        made = await ids(ada, "/api/v1/projects")
        assert len(made) == len(before) + 2


async def test_a_refused_mutation_charges_none_of_its_further_fields(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        app[RATE_LIMITER].plans = {"free": parse("4/minute"), "paid": parse("1000/second")}
        before = await ids(ada, "/api/v1/projects")  # 1 of 4
        # the request is 2 of 4, its three further fields would be 5 of 4: none counted
        status, problem, _ = await ada.call("POST", GRAPHQL, {"query": creates(4, "Four")})
        assert status == 429, problem
        # so two more writes still fit: 3 and 4 of 4
        status, answer, headers = await ada.call("POST", GRAPHQL,
                                                 {"query": creates(2, "Two")})
        assert status == 200 and not answer.get("errors"), answer
        assert headers["RateLimit"].startswith('"free";r=0;')
        app[RATE_LIMITER].plans = {"free": parse("1000/second"), "paid": parse("1000/second")}
        assert len(await ids(ada, "/api/v1/projects")) == len(before) + 2


async def test_queries_and_single_mutations_cost_one_request(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with two_people(tmp_path, smtp_server) as (app, ada, _bob):
        app[RATE_LIMITER].plans = {"free": parse("3/minute"), "paid": parse("1000/second")}
        query = {"query": "{ a: projects { edges { node { id } } } "
                          "b: projects { edges { node { id } } } }"}
        status, answer, headers = await ada.call("POST", GRAPHQL, query)
        assert status == 200 and not answer.get("errors"), answer
        assert headers["RateLimit"].startswith('"free";r=2;')
        status, answer, headers = await ada.call("POST", GRAPHQL, {"query": creates(1, "One")})
        assert status == 200 and not answer.get("errors"), answer
        assert headers["RateLimit"].startswith('"free";r=1;')
