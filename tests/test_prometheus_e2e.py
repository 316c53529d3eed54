"""A real Prometheus (Debian's) scrapes a running server and evaluates the SLO rules."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from loopback import free_port
from nodepeer import running_server

from dawserver.config import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "ops" / "prometheus" / "slo.rules.yml"
PROMETHEUS = shutil.which("prometheus")

pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(PROMETHEUS is None, reason="the prometheus binary is missing: "
                       "apt-get install prometheus (scripts/apt-packages.txt)"),
]


async def _query(http: aiohttp.ClientSession, base: str, promql: str) -> list[dict]:
    async with http.get(f"{base}/api/v1/query", params={"query": promql}) as answer:
        body = await answer.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def _log(proc: subprocess.Popen) -> str:
    config = next(a for a in proc.args if a.startswith("--config.file="))
    path = Path(config.split("=", 1)[1]).with_name("prometheus.log")
    return path.read_text(errors="replace")[-2000:] if path.exists() else ""


async def _until(http: aiohttp.ClientSession, base: str, promql: str, proc: subprocess.Popen,
                 timeout: float = 45.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"prometheus exited: {_log(proc)}"
        try:
            result = await _query(http, base, promql)
        except aiohttp.ClientError:
            result = []
        if result:
            return result
        assert time.monotonic() < deadline, f"prometheus never answered {promql!r}"
        await asyncio.sleep(0.25)


async def test_prometheus_scrapes_the_server_and_records_the_api_slo(tmp_path: Path) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data")
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "dawserver", "static_configs": [
            {"targets": [f"127.0.0.1:{config.port}"]}]}],
    }))
    base = f"http://127.0.0.1:{prom_port}"
    async with running_server(config), aiohttp.ClientSession() as http:
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            stop = asyncio.Event()

            async def traffic() -> None:  # requests for the API SLO's ratio to read
                while not stop.is_set():
                    async with http.get(f"{config.base_url}/healthz") as answer:
                        assert answer.status == 200
                    await asyncio.sleep(0.1)

            load = asyncio.create_task(traffic())
            try:
                [up] = await _until(http, base, 'up{job="dawserver"} == 1', proc)
                assert up["metric"]["instance"] == f"127.0.0.1:{config.port}"
                [healthz] = await _until(http, base, 'http_request_duration_seconds_count'
                                         '{route="/healthz",method="GET",status="2xx"}', proc)
                assert float(healthz["value"][1]) >= 1
                # the recording rule needs two scrapes in its window, then an evaluation
                [ratio] = await _until(http, base, 'slo:error_ratio:rate5m'
                                       '{slo="api-availability"} >= 0', proc)
                assert ratio["metric"]["vertical"] == "platform"
                assert float(ratio["value"][1]) == 0.0  # no request failed
            finally:
                stop.set()
                await load
            async with http.get(f"{base}/api/v1/rules", params={"type": "alert"}) as answer:
                groups = (await answer.json())["data"]["groups"]
            states = {r["name"]: r["state"] for g in groups for r in g["rules"]}
            assert states["ApiAvailabilityBudgetBurnPage"] == "inactive"
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()
