"""Generate the protobuf/gRPC Python code and Envoy's descriptor set (``make protos``).

Output goes to ``teeprover/v1/`` (the proto package ``teeprover.v1`` fixes the
import path) and ``build/teeprover.pb``; both are git-ignored and never edited.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parent.parent


def _include_dirs() -> list[str]:
    from google.api import annotations_pb2  # googleapis-common-protos ships google/api/*.proto beside it

    googleapis_root = Path(annotations_pb2.__file__).resolve().parent.parent.parent
    well_known = Path(str(resources.files("grpc_tools") / "_proto"))
    return [str(REPO / "protos"), str(googleapis_root), str(well_known)]


def main() -> int:
    protos = sorted(str(p.relative_to(REPO / "protos")) for p in (REPO / "protos").rglob("*.proto"))
    includes = [f"-I{d}" for d in _include_dirs()]
    (REPO / "build").mkdir(exist_ok=True)
    out = str(REPO)
    bindir = Path(sys.executable).parent
    code = protoc.main(
        [
            "protoc",
            *includes,
            f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out={out}",
            f"--mypy_grpc_out={out}",
            *protos,
        ]
    )
    if code != 0:
        return code
    return protoc.main(
        [
            "protoc",
            *includes,
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={REPO / 'build' / 'teeprover.pb'}",
            *protos,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
