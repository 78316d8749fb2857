"""Static checks of the Dockerfiles that checkov does not make (no Docker engine runs here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "deploy" / "Dockerfile", REPO / "deploy" / "enclave" / "Dockerfile",
               REPO / "deploy" / "enclave" / "launcher" / "Dockerfile"]
PYTHON_IMAGES = DOCKERFILES[:2]


def _stages(path: Path) -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_base_image_is_pinned_by_digest(path: Path) -> None:
    for stage in _stages(path):
        assert re.match(r"FROM \S+@sha256:[0-9a-f]{64}( AS \w+)?$", stage[0]), stage[0]


@pytest.mark.parametrize("path", PYTHON_IMAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_dev_extras_and_only_the_build_stage_compiles(path: Path) -> None:
    stages = _stages(path)
    text = path.read_text()
    assert "[dev" not in text and ".[" not in text, "dev extras must not be installed"
    final = stages[-1]
    assert not any("gcc" in line for line in final), "no compiler in the image"
    assert any(line.startswith("COPY --from=build /opt/venv ") for line in final)
    assert not any("/opt/tools" in line for line in final), "code-generation tools stay in the build stage"


def test_runtime_image_runs_as_a_non_root_user_and_carries_an_sbom_label() -> None:
    final = _stages(REPO / "deploy" / "Dockerfile")[-1]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    label = " ".join(line for line in final if line.startswith("LABEL "))
    sbom = re.search(r'dev\.teeprover\.sbom="([^"]+)"', label)
    assert sbom is not None
    assert any(line.startswith("COPY --from=build") and line.endswith(sbom.group(1)) for line in final)


def test_build_stage_tool_pins_equal_the_projects_pins() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(p.split("==") for p in [*project["dependencies"], *project["optional-dependencies"]["dev"],
                                        *project["optional-dependencies"]["audit"]])
    for path in PYTHON_IMAGES:
        tools = re.findall(r"([a-z0-9-]+)==([0-9][^\s\\]*)", path.read_text())
        assert tools
        for name, version in tools:
            assert pins.get(name) == version, f"{path.name}: {name}=={version}, pyproject has {pins.get(name)}"


def _enclave_env() -> dict[str, str]:
    final = _stages(REPO / "deploy" / "enclave" / "Dockerfile")[-1]
    env_line = next(line for line in final if line.startswith("ENV "))
    return dict(item.split("=", 1) for item in env_line[4:].split() if item.startswith("TEEPROVER_"))


@pytest.mark.parametrize("service", ["prover", "attestor"])
def test_the_enclaves_measured_settings_load_for_the_services_it_runs(service: str) -> None:
    from services.common import config as cfgmod

    env = _enclave_env()
    assert env["TEEPROVER_PLATFORM"] == "aws-nitro" and env["TEEPROVER_BIND_HOST"].startswith("unix:/")
    init = (REPO / "deploy" / "enclave" / "enclave-init.sh").read_text()
    port = re.search(rf"TEEPROVER_METRICS_PORT=(\d+) teeprover serve {service}", init)
    assert port is not None
    cls = cfgmod.ProverConfig if service == "prover" else cfgmod.AttestorConfig
    loaded = cfgmod.load(cls, {**env, "TEEPROVER_METRICS_PORT": port.group(1)})  # unknown keys or bad values raise
    assert loaded.bind_host == env["TEEPROVER_BIND_HOST"]
