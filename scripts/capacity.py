"""Write docs/capacity.md: per-core figures, the nodes the seed's targets need, and cost.

The figures come from the benchmarks' JSON under docs/ (``benchmarks-collab.json``,
``benchmarks-capacity.json``, ``benchmarks-live-audio.json``, ``benchmarks-page.json``);
the targets, assumptions and cloud prices from ``docs/capacity-inputs.json``; the prose
from ``scripts/capacity_template.md``.  Nothing here is typed in by hand: change an input
or re-run a benchmark, then regenerate::

    python scripts/capacity.py            # writes docs/capacity.md
    python scripts/capacity.py --check    # exit 1 if docs/capacity.md is not what it writes
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "capacity.md"
INPUTS = ROOT / "docs" / "capacity-inputs.json"
TEMPLATE = Path(__file__).with_name("capacity_template.md")
GB = 2**30


@dataclass(frozen=True)
class Figure:
    """One measured figure and where it comes from."""

    key: str
    what: str
    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class NodeRow:
    """Nodes of one kind: ``nodes = ceil(demand / per_node)``."""

    kind: str
    node: str
    demand: float
    demand_unit: str
    per_node: float
    nodes: int
    usd_month: float


def _load(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "docs" / name).read_text())


def load_figures() -> dict[str, Figure]:
    """Every per-core / per-GB figure the plan uses, from the benchmarks' JSON."""
    collab = _load("benchmarks-collab.json")
    capacity = _load("benchmarks-capacity.json")
    live = _load("benchmarks-live-audio.json")
    page = _load("benchmarks-page.json")
    target_p99 = json.loads(INPUTS.read_text())["targets"]["p99_ms"]
    met = [run["ours"] for section in collab.values() for run in section["runs"]
           if run["ours"]["latency_ms"]["p99"] <= target_p99]
    edits = statistics.median(r["edits_sent"] / r["measure_s"] / r["server_cpu_cores"]
                              for r in met)
    deliveries = statistics.median(
        r["deliveries_received"] / r["measure_s"] / r["server_cpu_cores"] for r in met)
    heavy_mb = statistics.median(s["memory"]["ours"]["per_document_mb"]
                                 for s in collab.values())
    runs_by_size: dict[int, list[float]] = {}
    for section in collab.values():
        for run in section["runs"]:
            runs_by_size.setdefault(run["clients"], []).append(run["ours"]["latency_ms"]["p99"])
    cap = "benchmarks-capacity.json"
    figures = [
        Figure("edits_per_core_s", "edits applied per server core-second (median of the "
               f"{len(met)} runs with p99 ≤ {target_p99} ms)", edits, "edits/s",
               "benchmarks-collab.json"),
        Figure("deliveries_per_core_s", "edits delivered to peers per server core-second "
               "(same runs)", deliveries, "messages/s", "benchmarks-collab.json"),
        *(Figure(f"room_{size}_p99_share", f"share of runs with {size} clients in one room "
                 f"under p99 {target_p99} ms ({len(p99s)} runs)",
                 sum(v <= target_p99 for v in p99s) / len(p99s), "of runs",
                 "benchmarks-collab.json") for size, p99s in sorted(runs_by_size.items())),
        Figure("typical_documents_per_gb", "documents in memory per GB, "
               f"{capacity['typical_documents']['tracks']}-track demo project",
               capacity["typical_documents"]["documents_per_gb"], "documents/GB", cap),
        Figure("heavy_documents_per_gb", "documents in memory per GB, 256 tracks / 2000 "
               "clips (the server's resident set)", 1024 / heavy_mb, "documents/GB",
               "benchmarks-collab.json"),
        Figure("sessions_per_gb", "sign-in sessions per GB of Redis",
               capacity["redis_sessions"]["sessions_per_gb"], "sessions/GB", cap),
        Figure("api_requests_per_core_s", "API requests per core-second (GET /api/v1/projects/"
               "{id}, client and server on the one core: a floor)",
               capacity["api_requests"]["requests_per_cpu_s"], "requests/s", cap),
        Figure("render_audio_s_per_core_s", f"seconds of a {capacity['renders']['tracks']}"
               "-track mix rendered per core-second (C engine)",
               capacity["renders"]["audio_s_per_cpu_s"], "audio s/s", cap),
        Figure("posts_per_core_s", "social posts dispatched per core-second (job worker, "
               "SQLite and the fake network in one process: a floor)",
               capacity["social_dispatch"]["posts_per_cpu_s"], "posts/s", cap),
        Figure("rows_per_core_s", "analytics rows upserted into PostgreSQL per second by one "
               "writer, over the machine's cores (writer and database share them: a floor)",
               capacity["analytics_ingest"]["rows_per_core_s"], "rows/s", cap),
        Figure("listeners_per_core", "live-mix listeners per server core (WebRTC)",
               1 / live["cpu"]["cpu_per_listener"], "listeners", "benchmarks-live-audio.json"),
        Figure("peaks_requests_per_page", "HTTP requests for peaks when the studio page opens",
               page["median"]["current"]["peaks_requests"], "requests", "benchmarks-page.json"),
    ]
    return {f.key: f for f in figures}


def _row(kind: str, node: str, demand: float, unit: str, per_node: float,
         price: float) -> NodeRow:
    nodes = math.ceil(demand / per_node)
    return NodeRow(kind, node, demand, unit, per_node, nodes, nodes * price)


def plan(figures: dict[str, Figure], inputs: dict[str, Any]) -> dict[str, Any]:
    """Nodes of each kind for the seed's targets, the monthly cost and the checks."""
    t, a, p = inputs["targets"], inputs["assumptions"], inputs["prices"]
    general, memory, redis = p["general_node"], p["memory_node"], p["redis_node"]
    cpu = general["vcpus"] * a["cpu_utilisation"]
    f = {key: fig.value for key, fig in figures.items()}
    open_docs = t["concurrent_sessions"] * a["open_document_share"] / a[
        "sessions_per_open_document"]
    editing = t["concurrent_sessions"] * a["open_document_share"]
    renders_s = t["accounts"] * a["renders_per_account_month"] / (p["hours_per_month"] * 3600)
    per_render_s = f["render_audio_s_per_core_s"] / (a["render_minutes"] * 60)
    posts_s = t["accounts"] * a["posts_per_account_month"] / (p["hours_per_month"] * 3600)
    rows_s = t["accounts"] * a["analytics_points_per_account_day"] / 86400
    rows = [
        _row("API", "general", t["requests_per_s"], "requests/s",
             f["api_requests_per_core_s"] * cpu, general["usd_month"]),
        _row("collaboration (memory: open documents)", "memory", open_docs, "documents",
             f["typical_documents_per_gb"] * memory["memory_gb"] * a["memory_utilisation"],
             memory["usd_month"]),
        _row("collaboration (CPU: edits)", "general", editing * a["edits_per_editing_session_s"],
             "edits/s", f["edits_per_core_s"] * cpu, general["usd_month"]),
        _row("Redis (sessions)", "redis", t["concurrent_sessions"] * a["redis_replicas"],
             "session copies",
             f["sessions_per_gb"] * redis["memory_gb"] * a["memory_utilisation"],
             redis["usd_month"]),
        _row("render workers", "general", renders_s, "renders/s", per_render_s * cpu,
             general["usd_month"]),
        _row("social dispatch workers", "general", posts_s, "posts/s",
             f["posts_per_core_s"] * cpu, general["usd_month"]),
        _row("analytics ingestion (writer and database cores)", "general", rows_s, "rows/s",
             f["rows_per_core_s"] * cpu, general["usd_month"]),
    ]
    storage_gb = t["accounts"] * a["account_bytes"] * a["database_replicas"] / 1e9
    storage_usd = storage_gb * p["block_storage_gb_month"]["usd_month"]
    total = sum(r.usd_month for r in rows) + storage_usd
    session_rate = t["concurrent_sessions"] * a["requests_per_session_minute"] / 60
    alternatives = [
        _row("API at one request per session a minute", "general", session_rate, "requests/s",
             f["api_requests_per_core_s"] * cpu, general["usd_month"]),
        _row("collaboration memory if every open document were the 256-track one", "memory",
             open_docs, "documents",
             f["heavy_documents_per_gb"] * memory["memory_gb"] * a["memory_utilisation"],
             memory["usd_month"]),
    ]
    return {"rows": rows, "alternatives": alternatives, "storage_gb": storage_gb,
            "storage_usd": storage_usd, "total_usd": total,
            "per_account_usd": total / t["accounts"],
            "per_session_usd": total / t["concurrent_sessions"],
            "session_rate": session_rate, "open_docs": open_docs, "editing": editing,
            "renders_s": renders_s, "posts_s": posts_s, "rows_s": rows_s}


def _n(value: float) -> str:
    """A number as the doc prints it."""
    if float(value).is_integer() and abs(value) < 100:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3g}"


def _usd(value: float) -> str:
    return f"${value:,.0f}" if value >= 100 else f"${value:.6f}" if value < 0.01 else (
        f"${value:,.2f}")


def _rows_table(rows: list[NodeRow]) -> str:
    lines = ["| kind | node | demand | per node | nodes = ceil(demand / per node) | $/month |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.kind} | {r.node} | {_n(r.demand)} {r.demand_unit} | {_n(r.per_node)} | "
              f"{r.nodes:,} | {_usd(r.usd_month)} |" for r in rows]
    return "\n".join(lines)


def _ratios() -> dict[str, str]:
    """Each capacity benchmark's same-run ratio to its baseline, as the doc prints it."""
    measured = _load("benchmarks-capacity.json")
    pairs = {"api_ratio": ("api_requests", "bare_vs_full_stack"),
             "render_ratio": ("renders", "native_vs_twin"),
             "redis_ratio": ("redis_sessions", "vs_bare_set"),
             "document_ratio": ("typical_documents", "vs_update_bytes"),
             "posts_ratio": ("social_dispatch", "raw_vs_dispatch"),
             "rows_ratio": ("analytics_ingest", "bare_vs_upsert")}
    return {key: f"{measured[section][name]:.1f}" for key, (section, name) in pairs.items()}


def render(figures: dict[str, Figure], inputs: dict[str, Any],
           template: str | None = None) -> str:
    """The text of docs/capacity.md."""
    result = plan(figures, inputs)
    t, a, p = inputs["targets"], inputs["assumptions"], inputs["prices"]
    f = {key: fig.value for key, fig in figures.items()}
    figure_table = "\n".join(
        ["| figure | value | unit | source (docs/) |", "|---|---|---|---|"]
        + [f"| {fig.what} | {_n(fig.value)} | {fig.unit} | `{fig.source}` |"
           for fig in figures.values()])
    price_lines = ["| input | value | what |", "|---|---|---|"]
    for key, price in p.items():
        if isinstance(price, dict):
            price_lines.append(f"| `{key}` | ${price['usd_month']:,} a month | {price['what']} |")
        else:
            price_lines.append(f"| `{key}` | {price} | hours in a month |")
    assumption_lines = ["| assumption | value |", "|---|---|"] + [
        f"| `{key}` | {_n(value) if isinstance(value, float) else f'{value:,}'} |"
        for key, value in a.items()]
    target_lines = ["| target | value |", "|---|---|"] + [
        f"| `{key}` | {value:,} |" for key, value in t.items()]
    per_request_s = a["requests_per_session_minute"] / 60
    budget = t["cost_per_account_month_usd"] * t["accounts"]
    values = {
        **_ratios(),
        "figures": figure_table, "prices": "\n".join(price_lines),
        "assumptions": "\n".join(assumption_lines), "targets": "\n".join(target_lines),
        "nodes": _rows_table(result["rows"]),
        "alternatives": _rows_table(result["alternatives"]),
        "storage_gb": _n(result["storage_gb"]), "storage_usd": _usd(result["storage_usd"]),
        "total_usd": _usd(result["total_usd"]),
        "total_nodes": f"{sum(r.nodes for r in result['rows']):,}",
        "per_account_usd": _usd(result["per_account_usd"]),
        "per_session_usd": _usd(result["per_session_usd"]),
        "goal_usd": _usd(t["cost_per_account_month_usd"]),
        "budget_usd": _usd(budget),
        "budget_share": f"{result['total_usd'] / budget:.2%}",
        "alternatives_usd": _usd(sum(r.usd_month for r in result["alternatives"])),
        "goal_ratio": _n(t["cost_per_account_month_usd"] / result["per_account_usd"]),
        "accounts": f"{t['accounts']:,}", "sessions": f"{t['concurrent_sessions']:,}",
        "requests": f"{t['requests_per_s']:,}", "p99": f"{t['p99_ms']}",
        "world": f"{a['world_population']:,}",
        "accounts_per_person": _n(t["accounts"] / a["world_population"]),
        "sessions_share": f"{t['concurrent_sessions'] / a['world_population']:.1%}",
        "seconds_between_requests": _n(t["concurrent_sessions"] / t["requests_per_s"]),
        "hours_between_requests": _n(t["concurrent_sessions"] / t["requests_per_s"] / 3600),
        "session_rate": _n(result["session_rate"]),
        "session_rate_ratio": _n(result["session_rate"] / t["requests_per_s"]),
        "requests_per_session_minute": _n(a["requests_per_session_minute"]),
        "per_session_request_s": _n(per_request_s),
        "page_requests": _n(f["peaks_requests_per_page"]),
        "room_shares": ", ".join(f"{key.split('_')[1]} clients: {value:.0%}"
                                 for key, value in f.items() if key.startswith("room_")),
        "open_docs": _n(result["open_docs"]), "editing": _n(result["editing"]),
        "renders_s": _n(result["renders_s"]), "posts_s": _n(result["posts_s"]),
        "rows_s": _n(result["rows_s"]),
        "alt_api_nodes": f"{result['alternatives'][0].nodes:,}",
        "alt_memory_nodes": f"{result['alternatives'][1].nodes:,}",
    }
    text = string.Template(template if template is not None else TEMPLATE.read_text())
    return text.substitute(values)


def main(argv: list[str] | None = None) -> int:
    """Write docs/capacity.md (``--check``: compare instead)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if docs/capacity.md differs from what this writes")
    args = parser.parse_args(argv)
    text = render(load_figures(), json.loads(INPUTS.read_text()))
    if args.check:
        if not DOC.exists() or DOC.read_text() != text:
            print("docs/capacity.md is stale: run python scripts/capacity.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
