"""The help centre's rate limit on a real uvicorn: a flood from one address is held to its bucket while
other customers keep getting answers; schemathesis over the public routes finds no server error."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from assist.index.store import build_index
from tests.conftest import CHUNKING, TINY_KB, live_server

pytestmark = pytest.mark.live

BIN = Path(sys.executable).parent
RATE, BURST = 5, 20


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("public-live")
    build_index(TINY_KB, tmp / "idx", embedder, chunking=CHUNKING)
    env = {"ASSIST_INDEX_DIR": str(tmp / "idx"), "ASSIST_FEEDBACK_DB": str(tmp / "fb.db"), "ASSIST_API_KEYS": "live-key-0123456789",
           "ASSIST_PUBLIC_RATE": str(RATE), "ASSIST_PUBLIC_BURST": str(BURST), "ASSIST_PUBLIC_TRUSTED_PROXIES": "127.0.0.1",
           "ASSIST_SUGGEST__ABSTAIN_MIN_DENSE": "0.15", "ASSIST_SUGGEST__ABSTAIN_MIN_DENSE_OOS": "0.3"}
    with live_server(tmp, env) as url:
        yield url, tmp / "server.log"


def test_a_200_per_second_flood_from_one_address_is_held_to_its_limit_while_others_are_served(server):
    url, log = server
    flood_codes: list[int] = []
    other_codes: list[int] = []
    seconds, per_second = 3.0, 200
    start = time.monotonic()

    def flood(worker: int, workers: int) -> None:  # 200 requests a second in all, paced
        with httpx.Client(base_url=url, timeout=10) as c:
            n = worker
            while (due := start + n / per_second) < start + seconds:
                time.sleep(max(0.0, due - time.monotonic()))
                r = c.get("/v1/public/search", params={"q": "退款多久到账"}, headers={"X-Forwarded-For": "203.0.113.66"})
                flood_codes.append(r.status_code)
                n += workers

    def others() -> None:  # 40 other customers, two searches each, spread over the flood
        with httpx.Client(base_url=url, timeout=10) as c:
            for i in range(80):
                time.sleep(max(0.0, start + i * seconds / 80 - time.monotonic()))
                r = c.get("/v1/public/search", params={"q": "银行卡退款"}, headers={"X-Forwarded-For": f"198.51.100.{i // 2 + 1}"})
                other_codes.append(r.status_code)

    threads = [threading.Thread(target=flood, args=(w, 4)) for w in range(4)] + [threading.Thread(target=others)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - start
    allowed = flood_codes.count(200)
    print(f"flood: {len(flood_codes)} requests in {elapsed:.1f}s, {allowed} answered, {flood_codes.count(429)} refused; "
          f"others: {other_codes.count(200)}/{len(other_codes)} answered")
    assert len(flood_codes) >= 0.8 * seconds * per_second  # the flood really ran at ~200/s
    assert set(flood_codes) <= {200, 429}
    assert BURST <= allowed <= BURST + RATE * elapsed + 2  # the bucket, and not one request more
    assert other_codes == [200] * 80  # nobody else was refused or failed
    assert "Traceback" not in log.read_text()


def test_schemathesis_finds_no_server_errors_on_the_public_routes(tmp_path, embedder):
    build_index(TINY_KB, tmp_path / "idx", embedder, chunking=CHUNKING)
    env = {"ASSIST_INDEX_DIR": str(tmp_path / "idx"), "ASSIST_FEEDBACK_DB": str(tmp_path / "fb.db"), "ASSIST_API_KEYS": "live-key-0123456789",
           "ASSIST_PUBLIC_RATE": "100000", "ASSIST_PUBLIC_BURST": "100000"}
    with live_server(tmp_path, env) as url:
        config = tmp_path / "schemathesis.toml"
        config.write_text('[checks.negative_data_rejection]\nexpected-statuses = ["400", "404", "413", "415", "422", "429"]\n')
        cmd = [str(BIN / "schemathesis"), "--config-file", str(config), "run", url + "/openapi.json",
               "--include-path-regex", "^/v1/public/", "--max-examples", "40", "--seed", "20261202", "--request-timeout", "10",
               "--report", "json", "--report-dir", str(tmp_path / "report")]
        result = subprocess.run(cmd, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=240)
        report = json.loads(next((tmp_path / "report").glob("*.json")).read_text())
    cases = report["test_cases"]
    print(f"schemathesis (public): {cases['generated']} cases, {cases['with_failures']} with failures")
    assert result.returncode == 0, result.stdout[-4000:]
    assert report["failures"] == [] and report["errors"] == []
    assert report["operations"]["tested"] == 5  # of the API's operations, the public ones
    assert "Traceback" not in (tmp_path / "server.log").read_text()
