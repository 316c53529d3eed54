"""HTTP routes of results: the report (JSON or CSV), a post's readings, and the public
short-link redirect ``/s/{code}``.

The report and readings need ``social.read`` (as the calendar) and are scoped by the
request's account: another account's post or channel ids answer 404.
"""

from __future__ import annotations

from typing import Any

from business.social.links import TooManyGuesses
from business.social.permissions import READ
from business.social.report import report_csv
from business.social.results_schemas import Reading, ResultsQuery, ResultsReport
from business.social.results_services import results
from business.social.routes import BASE, POST, REDIRECT, _api
from business.social.times import parse_time
from dawserver.plugin_api import PUBLIC, Reply, Request, Route, TooManyRequests

CSV = "text/csv"


@_api
async def results_report(request: Request) -> Any:
    """Results of the posts published in ``[from, to)``: per post and totals; CSV with
    ``format=csv``."""
    query: ResultsQuery = request.query
    start, end = parse_time(query.start)[0], parse_time(query.end)[0]
    report = await results(request.context).report.build(
        request.account_id, start, end, channel_id=query.channel, campaign=query.campaign)
    if query.format == "csv":
        return Reply(report_csv(report), media_type=CSV, headers={
            "Content-Disposition": 'attachment; filename="social-results.csv"'})
    return report


@_api
async def post_readings(request: Request) -> Any:
    """Every stored metrics reading of a post's channels, oldest first."""
    return await results(request.context).report.history(request.account_id,
                                                         request.params["post_id"])


@_api
async def follow_short_link(request: Request) -> Reply:
    """Count the click (not a bot's, once per visitor and hour) and redirect (302) to the
    original URL with its UTM parameters."""
    native = request.native
    address = (native.remote or "") if native is not None else ""
    try:
        link, _ = await results(request.context).links.click(
            request.params["code"], address, request.headers.get("User-Agent", ""))
    except TooManyGuesses as exc:
        raise TooManyRequests(str(exc), headers={"Retry-After": str(exc.retry_after)}) from None
    return Reply("", status=302, headers={"Location": link.target,
                                          "Cache-Control": "no-store",
                                          "Referrer-Policy": "no-referrer-when-downgrade"})


RESULT_ROUTES = [
    Route(method="GET", path=f"{BASE}/results", handler=results_report, permission=READ,
          query=ResultsQuery, response=ResultsReport, media=(CSV,)),
    Route(method="GET", path=f"{POST}/results", handler=post_readings, permission=READ,
          response=list[Reading]),
    Route(method="GET", path="/s/{code}", handler=follow_short_link, permission=PUBLIC,
          response=REDIRECT, status=302),
]


