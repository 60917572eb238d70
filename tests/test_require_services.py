"""FHIR_ASSIST_REQUIRE_SERVICES=1 turns a missing service into a failure, not a skip.

Runs pytest in a subprocess with a PATH that holds no redis-server, on a test that needs
the session's Redis, once with and once without the variable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDS_REDIS = '''
def test_needs_redis(redis_url):
    assert redis_url.startswith("redis://")
'''


def run_without_redis(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_needs_redis.py"
    test_file.write_text(NEEDS_REDIS)
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "FHIR_ASSIST_REQUIRE_SERVICES"}
    env["PATH"] = str(empty_bin)          # no redis-server anywhere
    env["PYTHONPATH"] = str(ROOT)
    if require is not None:
        env["FHIR_ASSIST_REQUIRE_SERVICES"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(test_file)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_redis_fails_the_run_when_services_are_required(tmp_path):
    result = run_without_redis(tmp_path, "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "redis-server is not installed" in result.stdout
    assert "1 error" in result.stdout and "skipped" not in result.stdout


def test_missing_redis_skips_with_the_install_hint_otherwise(tmp_path):
    result = run_without_redis(tmp_path, None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "make system-deps" in result.stdout
