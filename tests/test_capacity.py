"""docs/capacity.md is what scripts/capacity.py writes, and its arithmetic holds."""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("capacity", ROOT / "scripts" / "capacity.py")
capacity = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("capacity", capacity)  # dataclasses look their module up
_spec.loader.exec_module(capacity)


@pytest.fixture
def inputs() -> dict:
    return json.loads((ROOT / "docs" / "capacity-inputs.json").read_text())


def test_the_doc_is_what_the_script_writes_from_the_json() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "capacity.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (ROOT / "docs" / "capacity.md").read_text() == capacity.render(
        capacity.load_figures(), json.loads(capacity.INPUTS.read_text()))


def test_every_node_count_is_the_ceiling_of_demand_over_a_node(inputs: dict) -> None:
    figures = capacity.load_figures()
    plan = capacity.plan(figures, inputs)
    for row in plan["rows"] + plan["alternatives"]:
        assert row.nodes == math.ceil(row.demand / row.per_node), row
        assert (row.nodes - 1) * row.per_node < row.demand <= row.nodes * row.per_node
    prices = {name: inputs["prices"][f"{name}_node"]["usd_month"]
              for name in ("general", "memory", "redis")}
    for row in plan["rows"]:
        assert row.usd_month == pytest.approx(row.nodes * prices[row.node])
    storage = (inputs["targets"]["accounts"] * inputs["assumptions"]["account_bytes"]
               * inputs["assumptions"]["database_replicas"] / 1e9)
    total = sum(r.usd_month for r in plan["rows"]) + storage * inputs["prices"][
        "block_storage_gb_month"]["usd_month"]
    assert plan["total_usd"] == pytest.approx(total)
    assert plan["per_account_usd"] == pytest.approx(total / inputs["targets"]["accounts"])


def test_the_api_tier_is_recomputed_from_the_benchmark_json(inputs: dict) -> None:
    measured = json.loads((ROOT / "docs" / "benchmarks-capacity.json").read_text())
    node = inputs["prices"]["general_node"]
    per_node = (measured["api_requests"]["requests_per_cpu_s"] * node["vcpus"]
                * inputs["assumptions"]["cpu_utilisation"])
    api = capacity.plan(capacity.load_figures(), inputs)["rows"][0]
    assert api.kind == "API" and api.per_node == pytest.approx(per_node)
    assert api.nodes == math.ceil(inputs["targets"]["requests_per_s"] / per_node)
    doc = (ROOT / "docs" / "capacity.md").read_text()
    assert f"| API | general | {inputs['targets']['requests_per_s']:,} requests/s | " \
           f"{per_node:,.0f} | {api.nodes:,} |" in doc


def test_a_changed_input_changes_the_doc_and_check_catches_a_stale_one(
        inputs: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = capacity.load_figures()
    doubled = copy.deepcopy(inputs)
    doubled["targets"]["requests_per_s"] *= 2
    before = capacity.plan(figures, inputs)["rows"][0]
    after = capacity.plan(figures, doubled)["rows"][0]
    assert after.nodes == math.ceil(2 * before.demand / before.per_node) > before.nodes
    assert capacity.render(figures, doubled) != capacity.render(figures, inputs)
    monkeypatch.setattr(capacity, "DOC", tmp_path / "capacity.md")
    (tmp_path / "capacity.md").write_text("stale\n")
    assert capacity.main(["--check"]) == 1
    assert capacity.main([]) == 0 and capacity.main(["--check"]) == 0
