"""The Helm chart renders with the real `helm` and its manifests pass the Kubernetes API schemas.

The chart's optional Redis dependency comes from an OCI registry that this test cannot reach,
so each render works on a copy of the chart without the `dependencies` block: the templates of
our own chart are rendered and checked exactly as a cluster would get them; the third-party
Redis subchart is not ours to validate.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "fhir-assist"
KUBERNETES_VERSION = "1.33"
EXTERNAL_REDIS = ["--set", "redis.enabled=false", "--set", "externalRedis.url=redis://redis:6379/0"]


def _helm_executable() -> str:
    found = shutil.which("helm") or next(
        (str(p) for p in [Path.home() / "go" / "bin" / "helm"] if p.exists()), None)
    if found:
        return found
    message = "helm is not installed; run `make system-deps` (scripts/system-deps.sh)"
    if os.environ.get("FHIR_ASSIST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chart_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("chart") / "fhir-assist"
    shutil.copytree(CHART, copy)
    chart_yaml = copy / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    assert meta.get("dependencies"), "the chart declares its optional Redis dependency"
    meta.pop("dependencies")
    chart_yaml.write_text(yaml.safe_dump(meta))
    return copy


def render(chart: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([_helm_executable(), "template", "cds", str(chart), *args],
                          capture_output=True, text=True, timeout=120)


def manifests(chart: Path, *args: str) -> list[dict]:
    result = render(chart, *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def only(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"one {kind} expected, got {len(found)}"
    return found[0]


def validate_all(docs: list[dict]) -> None:
    import kubernetes_validate

    for doc in docs:
        # strict: unknown fields (a typo in a template) fail as they would with kubectl --validate
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("values", [
    pytest.param([], id="bundled-redis"),
    pytest.param(EXTERNAL_REDIS, id="external-redis"),
    pytest.param(["--set", "redis.enabled=false", "--set", "autoscaling.enabled=false",
                  "--set", "replicaCount=1"], id="single-replica-no-redis"),
    pytest.param(["--set", "ingress.enabled=true", "--set", "trust.issuers[0].issuer=https://ehr.example.org",
                  "--set", "trust.issuers[0].keyFile=ehr.pem", "--set-string", "trust.keys.ehr\\.pem=KEY"],
                 id="ingress-and-trusted-issuer"),
])
def test_rendered_manifests_pass_the_kubernetes_schemas(chart_copy, values):
    docs = manifests(chart_copy, *values)
    assert {"Deployment", "Service", "ConfigMap", "Secret"} <= {d["kind"] for d in docs}
    validate_all(docs)


def test_default_deployment_is_replicated_probed_and_bounded(chart_copy):
    docs = manifests(chart_copy, *EXTERNAL_REDIS)
    hpa, deployment = only(docs, "HorizontalPodAutoscaler"), only(docs, "Deployment")
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][:2] == ["fhir-assist", "serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"].startswith("/readyz")
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    assert env["FHIR_ASSIST_REDIS_URL"]["value"] == "redis://redis:6379/0"
    assert only(docs, "Service")["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_the_config_map_is_settings_the_service_accepts(chart_copy):
    """Every FHIR_ASSIST_* the chart sets by default parses (a typo'd value would stop every pod)."""
    from fhir_assist.config import Settings

    data = only(manifests(chart_copy, *EXTERNAL_REDIS), "ConfigMap")["data"]
    settings = Settings.from_env({k: v for k, v in data.items() if k.startswith("FHIR_ASSIST_")})
    assert settings.device == "auto" and settings.threads == 8


@pytest.mark.parametrize("values", [
    pytest.param(["--set", "redis.enabled=false"], id="autoscaling-without-redis"),
    pytest.param(["--set", "redis.enabled=false", "--set", "autoscaling.enabled=false",
                  "--set", "replicaCount=3"], id="replicas-without-redis"),
])
def test_more_than_one_replica_requires_redis(chart_copy, values):
    # Replicas keep patient state, feedback and token replay checks in Redis; without it,
    # each would answer from its own memory.
    result = render(chart_copy, *values)
    assert result.returncode != 0
    assert "redis" in result.stderr.lower()
