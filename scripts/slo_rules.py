"""Write the SLOs' Prometheus rules and Grafana dashboards from one table (docs/slo.md).

``python3 scripts/slo_rules.py`` rewrites ``ops/prometheus/slo.rules.yml`` and
``ops/grafana/*.json``; ``--check`` only says whether they are up to date (a test runs
it). Each SLO is a ratio of good events to all events over counters the code exports;
its rules are the error ratio over seven windows and two multi-window burn-rate alerts
(the SRE workbook's: page at 14.4× over 1 h and 5 m or 6× over 6 h and 30 m, ticket at
3× over 1 d and 2 h or 1× over 3 d and 6 h).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "ops" / "prometheus" / "slo.rules.yml"
DASHBOARDS = ROOT / "ops" / "grafana"
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
#: (severity, [(burn rate, long window, short window)]): either pair firing fires.
BURNS = (("page", [(14.4, "1h", "5m"), (6, "6h", "30m")]),
         ("ticket", [(3, "1d", "2h"), (1, "3d", "6h")]))


@dataclass(frozen=True)
class Slo:
    """One SLO: ``good`` and ``total`` are PromQL counters (``{w}``: the rate window)."""

    name: str
    vertical: str
    title: str
    objective: float
    good: str
    total: str
    description: str
    #: Panels besides the SLO's own: (title, PromQL).
    panels: list[tuple[str, str]] = field(default_factory=list)

    def error_ratio(self, window: str) -> str:
        return (f"1 - (({self.good.format(w=window)}) / ({self.total.format(w=window)}))")


SLOS = [
    Slo("audio-processing", "audio", "Audio: frames made under 50 ms", 0.999,
        'sum(rate(audio_frame_processing_seconds_bucket{{le="0.05"}}[{w}]))',
        "sum(rate(audio_frame_processing_seconds_count[{w}]))",
        "99.9 % of live-mix frames are made (changes applied, rendered, encoded) in 50 ms",
        [("Frame time p99.9 (s)", "histogram_quantile(0.999, sum by (le) "
          "(rate(audio_frame_processing_seconds_bucket[5m])))"),
         ("Render real-time factor p50", "histogram_quantile(0.5, sum by (le, kind) "
          "(rate(render_realtime_factor_bucket[5m])))"),
         ("Edit propagation p99 (s)", "histogram_quantile(0.99, sum by (le) "
          "(rate(collab_edit_propagation_seconds_bucket[5m])))"),
         ("Documents loaded", "sum(collab_documents_loaded)")]),
    Slo("distribution-delivery", "distribution", "Distribution: delivered within 5 days", 0.99,
        'sum(rate(distribution_delivery_seconds_bucket{{le="432000.0"}}[{w}]))',
        'sum(rate(distribution_deliveries_total[{w}]))',
        "99 % of deliveries that end are delivered, within 5 days of being queued "
        "(the 2-5 day target); a delivery given up on counts against it",
        [("Delivered within 2 days (ratio)",
          'sum(rate(distribution_delivery_seconds_bucket{le="172800.0"}[1d])) / '
          "sum(rate(distribution_delivery_seconds_count[1d]))"),
         ("Deliveries ended", "sum by (outcome) (increase(distribution_deliveries_total[1d]))"),
         ("Delivery queue depth", 'sum by (state) (jobs_queue_depth{queue=~"distribution.*"})')]),
    Slo("social-dispatch", "social", "Social: posts delivered within 1 minute", 0.9995,
        'sum(rate(social_dispatch_lag_seconds_bucket{{le="60.0"}}[{w}]))',
        "sum(rate(social_dispatch_outcomes_total[{w}]))",
        "99.95 % of post targets that end are published, under 1 minute after their time",
        [("Dispatch lag p99 (s)", "histogram_quantile(0.99, sum by (le, network) "
          "(rate(social_dispatch_lag_seconds_bucket[5m])))"),
         ("Oldest due target (s)", "max(social_dispatch_oldest_due_seconds)"),
         ("Outcomes", "sum by (network, outcome) (rate(social_dispatch_outcomes_total[5m]))")]),
    Slo("marketplace-payments", "marketplace", "Marketplace: payment events processed",
        0.9999,
        'sum(rate(marketplace_webhook_events_total{{outcome!~"error|retry"}}[{w}]))',
        "sum(rate(marketplace_webhook_events_total[{w}]))",
        "99.99 % of Stripe webhook deliveries (payments, payouts, refunds) are processed "
        "the first time, with no error and no retry",
        [("Webhook lag p99 (s)", "histogram_quantile(0.99, sum by (le) "
          "(rate(marketplace_webhook_lag_seconds_bucket[5m])))"),
         ("Webhook outcomes", "sum by (outcome) (rate(marketplace_webhook_events_total[5m]))")]),
    Slo("analytics-freshness", "analytics", "Analytics: data fresher than 5 minutes", 0.99,
        'sum(rate(maxbooster_analytics_freshness_lag_seconds_bucket{{le="300.0"}}[{w}]))',
        "sum(rate(maxbooster_analytics_freshness_lag_seconds_count[{w}]))",
        "99 % of ingested batches are queryable within 5 minutes of being fetched",
        [("Freshness lag p99 (s)", "histogram_quantile(0.99, sum by (le, source) "
          "(rate(maxbooster_analytics_freshness_lag_seconds_bucket[5m])))"),
         ("Seconds since last batch",
          "time() - maxbooster_analytics_last_queryable_timestamp_seconds")]),
    Slo("api-availability", "platform", "Platform: HTTP API answers without a server error",
        0.999,
        'sum(rate(http_request_duration_seconds_count{{status!="5xx"}}[{w}]))',
        "sum(rate(http_request_duration_seconds_count[{w}]))",
        "99.9 % of HTTP requests are answered without a 5xx",
        [("Request latency p99 by route (s)", "histogram_quantile(0.99, sum by (le, route) "
          "(rate(http_request_duration_seconds_bucket[5m])))"),
         ("Job queue depth", "sum by (queue, state) (jobs_queue_depth)"),
         ("Oldest due job (s)", "max by (queue) (jobs_oldest_due_age_seconds)"),
         ("Rate-limit rejections", "sum by (plan) (rate(ratelimit_rejections_total[5m]))")]),
]

#: Alerts that are not burn rates: (name, expr, for, severity, summary).
PLAIN_ALERTS = [
    ("AnalyticsSourceStale",
     "time() - maxbooster_analytics_last_queryable_timestamp_seconds > 300", "5m", "ticket",
     "Analytics source {{ $labels.source }} has had no fresh batch for over 5 minutes"),
    ("JobQueueStuck", "jobs_oldest_due_age_seconds > 600", "5m", "page",
     "Job queue {{ $labels.queue }} has had a due job waiting for over 10 minutes"),
]


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def rules() -> dict:
    """The rules file's content."""
    groups = []
    for slo in SLOS:
        labels = {"slo": slo.name, "vertical": slo.vertical}
        records = [{"record": f"slo:error_ratio:rate{w}", "expr": slo.error_ratio(w),
                    "labels": labels} for w in WINDOWS]
        records.append({"record": "slo:objective:ratio", "expr": f"vector({slo.objective})",
                        "labels": labels})
        budget = round(1 - slo.objective, 6)
        alerts = []
        for severity, pairs in BURNS:
            expr = " or ".join(
                f"(slo:error_ratio:rate{long}{{slo=\"{slo.name}\"}} > ({rate} * {budget}) and "
                f"slo:error_ratio:rate{short}{{slo=\"{slo.name}\"}} > ({rate} * {budget}))"
                for rate, long, short in pairs)
            alerts.append({
                "alert": f"{_camel(slo.name)}BudgetBurn{severity.capitalize()}",
                "expr": expr, "labels": {**labels, "severity": severity},
                "annotations": {"summary": f"{slo.title}: error budget burning too fast "
                                           f"({severity})",
                                "description": f"SLO: {slo.description}. See docs/slo.md."}})
        groups.append({"name": f"slo-{slo.name}", "rules": records + alerts})
    groups.append({"name": "platform-alerts", "rules": [
        {"alert": name, "expr": expr, "for": wait, "labels": {"severity": severity},
         "annotations": {"summary": summary}}
        for name, expr, wait, severity, summary in PLAIN_ALERTS]})
    return {"groups": groups}


def _panel(n: int, title: str, expr: str) -> dict:
    return {"id": n, "type": "timeseries", "title": title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": (n - 1) % 2 * 12, "y": (n - 1) // 2 * 8},
            "targets": [{"refId": "A", "expr": expr,
                         "datasource": {"type": "prometheus", "uid": "${datasource}"}}]}


def dashboard(vertical: str) -> dict:
    """The Grafana dashboard of one vertical: its SLOs, burn rates and own metrics."""
    panels: list[tuple[str, str]] = []
    for slo in (s for s in SLOS if s.vertical == vertical):
        panels.append((f"{slo.title} (SLI, objective {slo.objective:.4%})",
                       f"1 - slo:error_ratio:rate1h{{slo=\"{slo.name}\"}}"))
        panels.append((f"{slo.title}: burn rate (1 h)",
                       f"slo:error_ratio:rate1h{{slo=\"{slo.name}\"}} / on (slo) "
                       f"(1 - slo:objective:ratio{{slo=\"{slo.name}\"}})"))
        panels += slo.panels
    return {"uid": f"maxbooster-{vertical}", "title": f"Max Booster: {vertical}",
            "tags": ["maxbooster", "slo"], "schemaVersion": 39, "version": 1,
            "time": {"from": "now-6h", "to": "now"}, "refresh": "1m",
            "templating": {"list": [{"name": "datasource", "type": "datasource",
                                     "query": "prometheus", "label": "Prometheus"}]},
            "panels": [_panel(n, title, expr) for n, (title, expr) in enumerate(panels, 1)]}


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: object) -> bool:
        return True


def outputs() -> dict[Path, str]:
    """Every file this script writes and its text."""
    header = ("# Generated by scripts/slo_rules.py from its SLO table (docs/slo.md); "
              "edit the script, not this file.\n")
    files = {RULES: header + yaml.dump(rules(), Dumper=_NoAliases, sort_keys=False,
                                      width=1000)}
    for vertical in sorted({s.vertical for s in SLOS}):
        files[DASHBOARDS / f"{vertical}.json"] = json.dumps(dashboard(vertical), indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a generated file differs from what is written")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python3 scripts/slo_rules.py")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(outputs()[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
