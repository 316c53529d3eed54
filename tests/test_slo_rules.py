"""The SLO rules and dashboards (docs/slo.md): generated, valid, tested, and about real metrics."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from business.distribution import metrics as distribution_metrics
from business.marketplace.webhooks import MemoryInbox, Outcome, StripeEvent, receive

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "ops" / "prometheus" / "slo.rules.yml"
RULE_TESTS = ROOT / "ops" / "prometheus" / "tests" / "slo.test.yml"
DASHBOARDS = sorted((ROOT / "ops" / "grafana").glob("*.json"))
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing: apt-get install prometheus "
    "(scripts/apt-packages.txt)")
#: PromQL words that are not metric names.
PROMQL_WORDS = {"by", "on", "without", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}
#: The packages whose modules may define metrics.
PACKAGES = ("accounts", "collab", "database", "dawserver", "events", "jobs", "business")


def _rule_exprs() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for path in DASHBOARDS
            for panel in json.loads(path.read_text())["panels"] for target in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression reads (functions, labels, keywords left out)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range windows
    text = re.sub(r"\b(by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        rest = text[match.end():].lstrip()
        word = match.group(0)
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function or an operator
        if re.fullmatch(r"\d+[smhdwy]", word) or text[match.start() - 1:match.start()] == ".":
            continue
        names.add(word)
    return names


def exported_names() -> set[str]:
    """Every series name the code's metrics export (each module using prometheus_client
    imported, then read from the default registry)."""
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "fakes" in path.parts or "prometheus_client" not in path.read_text():
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total", "_created"],
                    "histogram": ["_bucket", "_count", "_sum", "_created"],
                    "summary": ["_count", "_sum", "_created"]}.get(family.type, [""])
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_the_generated_rules_and_dashboards_are_up_to_date() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "slo_rules.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@needs_promtool
def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    # Grafana shows a panel Prometheus cannot parse as an error, and only at run time: each
    # expression is checked here as a recording rule
    rules = [{"record": f"dashboard:panel_{n}", "expr": expr}
             for n, expr in enumerate(_dashboard_exprs())]
    assert rules
    checked = tmp_path / "dashboards.rules.yml"
    checked.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run([PROMTOOL, "check", "rules", str(checked)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_alerts_fire_as_their_unit_tests_say() -> None:
    done = subprocess.run([PROMTOOL, "test", "rules", str(RULE_TESTS)], capture_output=True,
                          text=True, timeout=60, cwd=RULE_TESTS.parent)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_vertical_has_an_slo_with_two_burn_rate_alerts() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    slos = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule and "slo" in rule["labels"]:
                slos.setdefault(rule["labels"]["vertical"], []).append(rule["labels"]["severity"])
    assert {v: sorted(s) for v, s in slos.items()} == {
        v: ["page", "ticket"] for v in
        ("audio", "distribution", "social", "marketplace", "analytics", "platform")}
    assert {path.stem for path in DASHBOARDS} == set(slos)


def test_every_metric_in_rules_and_dashboards_is_exported_by_the_code() -> None:
    recorded = {rule["record"] for group in yaml.safe_load(RULES.read_text())["groups"]
                for rule in group["rules"] if "record" in rule}
    used = set().union(*(metric_names(e) for e in _rule_exprs() + _dashboard_exprs()))
    assert "audio_frame_processing_seconds_bucket" in used  # the parser finds names
    missing = used - recorded - exported_names()
    assert not missing, f"rules or dashboards read metrics nothing exports: {sorted(missing)}"


def test_the_metric_name_parser_leaves_out_functions_labels_and_windows() -> None:
    assert metric_names('histogram_quantile(0.99, sum by (le, route) '
                        '(rate(http_request_duration_seconds_bucket{le="0.5"}[5m])))') == {
        "http_request_duration_seconds_bucket"}
    assert metric_names("time() - a_b > 300 and on (x) c:d") == {"a_b", "c:d"}


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_deliveries_that_end_are_counted_and_their_time_observed() -> None:
    within = _sample("distribution_delivery_seconds_bucket", le="432000.0")
    dead = _sample("distribution_deliveries_total", outcome="dead")
    distribution_metrics.ended("delivered", queued_at=1000.0, now=1000.0 + 3 * 86400)
    distribution_metrics.ended("delivered", queued_at=0.0, now=6 * 86400)  # too late
    distribution_metrics.ended("dead", queued_at=0.0, now=10.0)
    distribution_metrics.ended("retrying", queued_at=0.0, now=10.0)  # not an end
    assert _sample("distribution_delivery_seconds_bucket", le="432000.0") == within + 1
    assert _sample("distribution_deliveries_total", outcome="dead") == dead + 1


def test_webhook_outcomes_and_lag_are_counted() -> None:
    inbox = MemoryInbox()

    def event(n: int) -> StripeEvent:
        return StripeEvent.from_dict({"object": "event", "id": f"evt_{n}",
                                      "type": "payment_intent.succeeded", "created": 0,
                                      "data": {"object": {"id": f"pi_{n}"}}})

    async def processed(_: StripeEvent) -> Outcome:
        return Outcome.PROCESSED

    async def broken(_: StripeEvent) -> Outcome:
        raise RuntimeError("the ledger is down")

    before = {o: _sample("marketplace_webhook_events_total", outcome=o)
              for o in ("processed", "duplicate", "error")}
    lags = _sample("marketplace_webhook_lag_seconds_count")

    async def go() -> None:
        assert await receive(inbox, event(1), processed) is Outcome.PROCESSED
        assert await receive(inbox, event(1), processed) is Outcome.DUPLICATE
        with pytest.raises(RuntimeError):
            await receive(inbox, event(2), broken)

    asyncio.run(go())
    for outcome in before:
        assert _sample("marketplace_webhook_events_total", outcome=outcome) == \
            before[outcome] + 1
    assert _sample("marketplace_webhook_lag_seconds_count") == lags + 2
