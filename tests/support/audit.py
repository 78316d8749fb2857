"""Supply-chain audit of the installed environment (``make audit``): licenses, known vulnerabilities, SBOM.

    python -m tests.support.audit [--offline] [--sbom build/sbom.json] [--timeout 120]

1. **Licenses** of every installed distribution, from its metadata (PEP 639
   ``License-Expression``, else ``License``, else the trove classifiers), against
   the allow-list: Apache-2.0, MIT (and MIT-0), BSD (0BSD, 2- and 3-clause), ISC,
   PSF, MPL-2.0, and obvious equivalents (Zlib, Unlicense, CC0, HPND).  GPL and
   AGPL are refused; LGPL and anything unrecognised is *flagged* for a human.
   An ``OR`` expression passes when one alternative does; ``AND`` needs all.
   Also run by the default test suite (tests/e2e/test_security_defaults.py).
2. **Vulnerabilities** with ``pip-audit`` over the installed environment, under a
   hard timeout.  pip-audit treats an unreachable vulnerability service as
   "dependency not found on PyPI", skips it, and still prints "No known
   vulnerabilities found" with exit code 0; this module counts the skips and
   reports such a run as NOT AUDITED instead of passing it.
3. **SBOM**: CycloneDX JSON of the environment (``cyclonedx-py environment``)
   written to ``build/sbom.json``.

Exit code: 0 all clean; 1 a refused license or a known vulnerability;
2 incomplete (the vulnerability database was unreachable, a tool is missing, or
the SBOM failed) — never a silent pass.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]

# Lower-case SPDX ids and common free-text names → the canonical id of an allowed license.
_ALLOWED = {
    "apache-2.0": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0", "apache license version 2.0": "Apache-2.0",
    "apache license": "Apache-2.0", "apache software license": "Apache-2.0", "apache": "Apache-2.0",
    "mit": "MIT", "mit license": "MIT", "mit-0": "MIT-0", "expat": "MIT",
    "bsd": "BSD", "bsd license": "BSD", "0bsd": "0BSD", "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "3-clause bsd license": "BSD-3-Clause", "new bsd license": "BSD-3-Clause",
    "simplified bsd license": "BSD-2-Clause", "bsd 3-clause": "BSD-3-Clause", "bsd 2-clause": "BSD-2-Clause",
    "isc": "ISC", "isc license": "ISC", "isc license (iscl)": "ISC", "iscl": "ISC",
    "psf": "PSF-2.0", "psfl": "PSF-2.0", "psf-2.0": "PSF-2.0", "python-2.0": "PSF-2.0",
    "python software foundation license": "PSF-2.0",
    "mpl-2.0": "MPL-2.0", "mpl 2.0": "MPL-2.0", "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "mozilla public license 2.0": "MPL-2.0",
    "mit-cmu": "MIT-CMU", "zlib": "Zlib", "zlib/libpng license": "Zlib",
    "unlicense": "Unlicense", "the unlicense (unlicense)": "Unlicense",
    "cc0-1.0": "CC0-1.0", "cc0 1.0 universal (cc0 1.0) public domain dedication": "CC0-1.0", "hpnd": "HPND",
    "historical permission notice and disclaimer (hpnd)": "HPND",
}
# Classifier leaves that say nothing about which license it is.
_UNINFORMATIVE = {"osi approved", "dfsg approved", "other/proprietary license", "unknown", ""}
_REFUSED = re.compile(r"\b(a?gpl|affero|gnu general public)", re.IGNORECASE)
_WEAK_COPYLEFT = re.compile(r"\b(lgpl|lesser general public|library general public)", re.IGNORECASE)


@dataclass(frozen=True)
class LicenseVerdict:
    name: str
    version: str
    license: str  # what the metadata says (normalised where possible)
    source: str  # License-Expression | License | classifiers | none
    verdict: str  # allowed | flagged | refused
    reason: str = ""


@dataclass
class LicenseReport:
    verdicts: list[LicenseVerdict] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return len(self.verdicts)

    @property
    def refused(self) -> list[LicenseVerdict]:
        return [v for v in self.verdicts if v.verdict == "refused"]

    @property
    def flagged(self) -> list[LicenseVerdict]:
        return [v for v in self.verdicts if v.verdict == "flagged"]


def _classify_term(term: str) -> tuple[str, str]:
    """One license name → (verdict, canonical name)."""
    text = term.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    low = text.lower()
    if _WEAK_COPYLEFT.search(low):
        return "flagged", text
    if _REFUSED.search(low):
        return "refused", text
    if low in _ALLOWED:
        return "allowed", _ALLOWED[low]
    low = re.sub(r"\s+license$", "", low)
    if low in _ALLOWED:
        return "allowed", _ALLOWED[low]
    return "flagged", text


def classify_expression(expression: str) -> tuple[str, str]:
    """An SPDX-like expression → (verdict, reason).  OR: the best alternative; AND / WITH: the worst part."""
    rank = {"allowed": 0, "flagged": 1, "refused": 2}
    alternatives = re.split(r"\s+OR\s+", expression.strip())
    results = []
    for alternative in alternatives:
        parts = [p for p in re.split(r"\s+(?:AND|WITH)\s+", alternative.strip()) if p.strip()]
        verdicts = [_classify_term(p) for p in parts] or [("flagged", alternative)]
        worst = max(verdicts, key=lambda v: rank[v[0]])
        results.append((worst[0], " AND ".join(v[1] for v in verdicts)))
    best = min(results, key=lambda v: rank[v[0]])
    return best


def _license_of(dist: metadata.Distribution) -> tuple[str, str]:
    meta: Any = dist.metadata  # an email.message.Message underneath: .get() exists
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression, "License-Expression"
    text = (meta.get("License") or "").strip()
    first_line = text.splitlines()[0].strip() if text else ""
    if first_line and first_line.lower() not in _UNINFORMATIVE and len(text) <= 120:
        return first_line, "License"
    leaves = [c.split(" :: ")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    leaves = [leaf for leaf in leaves if leaf.lower() not in _UNINFORMATIVE]
    if leaves:
        return " OR ".join(leaves), "classifiers"  # several license classifiers mean a choice
    if first_line and first_line.lower() not in _UNINFORMATIVE:
        return first_line, "License"  # a full license text: judge by its title line
    return "", "none"


def check_licenses(distributions: list[metadata.Distribution] | None = None) -> LicenseReport:
    """Classify every installed distribution of this interpreter (the .venv under ``make``)."""
    report = LicenseReport()
    seen: set[str] = set()
    dists = list(metadata.distributions()) if distributions is None else distributions
    for dist in sorted(dists, key=lambda d: (d.metadata["Name"] or "").lower()):
        name = dist.metadata["Name"] or "?"
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        license_text, source = _license_of(dist)
        if not license_text:
            report.verdicts.append(LicenseVerdict(name, dist.version, "", source, "flagged",
                                                  "no license in the package metadata: check upstream"))
            continue
        verdict, canonical = classify_expression(license_text)
        reason = {"refused": "GPL/AGPL is not allowed",
                  "flagged": "not on the allow-list: needs review"}.get(verdict, "")
        if verdict == "flagged" and _WEAK_COPYLEFT.search(license_text):
            reason = "LGPL: allowed only as an unmodified, dynamically linked dependency; needs review"
        report.verdicts.append(LicenseVerdict(name, dist.version, canonical, source, verdict, reason))
    return report


def format_license_report(report: LicenseReport, *, verbose: bool = False) -> str:
    lines = [f"licenses: {report.checked} distributions, {len(report.refused)} refused, "
             f"{len(report.flagged)} flagged"]
    for v in report.verdicts:
        if verbose or v.verdict != "allowed":
            lines.append(f"  {v.verdict.upper():8} {v.name}=={v.version}: {v.license or '-'} "
                         f"(from {v.source}){' — ' + v.reason if v.reason else ''}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- vulnerabilities


@dataclass
class VulnReport:
    status: str  # clean | vulnerable | not-audited
    audited: int = 0
    skipped: int = 0
    findings: list[str] = field(default_factory=list)
    message: str = ""


def audit_vulnerabilities(timeout: float = 120.0) -> VulnReport:
    """pip-audit over the installed environment; unreachable service → ``not-audited``, never ``clean``."""
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as cache:
        cmd = [sys.executable, "-m", "pip_audit", "--local", "--skip-editable", "--progress-spinner", "off",
               "--format", "json", "--timeout", "15", "--cache-dir", cache]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
        except FileNotFoundError:
            return VulnReport("not-audited", message="pip-audit is not installed (pip install pip-audit)")
        except subprocess.TimeoutExpired:
            return VulnReport("not-audited", message=f"pip-audit did not finish within {timeout:.0f} s "
                                                     "(vulnerability service unreachable?)")
    if "No module named pip_audit" in out.stderr:
        return VulnReport("not-audited", message="pip-audit is not installed in this environment")
    try:
        data = json.loads(out.stdout)
    except json.JSONDecodeError:
        return VulnReport("not-audited", message=f"pip-audit failed (exit {out.returncode}): {out.stderr[-800:]}")
    # Our own editable package is skipped on purpose (--skip-editable); it is not a third-party dependency.
    deps = [d for d in data.get("dependencies", []) if "editable" not in (d.get("skip_reason") or "").lower()]
    skipped = [d for d in deps if d.get("skip_reason")]
    report = VulnReport("clean", audited=len(deps) - len(skipped), skipped=len(skipped))
    for dep in deps:
        for vuln in dep.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            report.findings.append(f"{dep['name']}=={dep.get('version')}: {vuln.get('id')} (fixed in {fixes})")
    if report.findings:
        report.status = "vulnerable"
    elif skipped:
        report.status = "not-audited"
        unreachable = report.audited == 0 and all("not found on PyPI" in d["skip_reason"] for d in skipped)
        report.message = (f"{len(skipped)} of {len(deps)} distributions were NOT audited"
                          + (": the vulnerability service (PyPI/OSV) is unreachable from here" if unreachable
                             else f", e.g. {skipped[0]['name']}: {skipped[0]['skip_reason']}"))
    return report


# --------------------------------------------------------------------------- SBOM


def write_sbom(path: Path, timeout: float = 120.0) -> tuple[bool, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "cyclonedx_py", "environment", "--pyproject", str(REPO / "pyproject.toml"),
           "--output-format", "JSON", "--output-file", str(path), "--output-reproducible", sys.executable]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return False, f"cyclonedx-py did not finish within {timeout:.0f} s"
    if out.returncode != 0:
        return False, f"cyclonedx-py failed (exit {out.returncode}): {(out.stderr or out.stdout)[-800:]}"
    bom = json.loads(path.read_text())
    return True, f"SBOM: {path} (CycloneDX {bom.get('specVersion')}, {len(bom.get('components', []))} components)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--offline", action="store_true", help="skip the vulnerability audit (reported as skipped)")
    parser.add_argument("--sbom", type=Path, default=REPO / "build" / "sbom.json", help="SBOM output path")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed for each external tool")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every distribution's license")
    args = parser.parse_args(argv)

    worst = 0
    licenses = check_licenses()
    print(format_license_report(licenses, verbose=args.verbose))
    if licenses.refused:
        worst = 1

    if args.offline:
        print("vulnerabilities: SKIPPED (--offline): the environment was NOT audited")
        worst = max(worst, 2)
    else:
        vulns = audit_vulnerabilities(args.timeout)
        if vulns.status == "clean":
            print(f"vulnerabilities: none known in {vulns.audited} audited distributions")
        elif vulns.status == "vulnerable":
            print(f"vulnerabilities: {len(vulns.findings)} known")
            print("\n".join("  " + f for f in vulns.findings))
            worst = 1
        else:
            print(f"vulnerabilities: NOT AUDITED — {vulns.message}")
            worst = max(worst, 2)

    ok, message = write_sbom(args.sbom, args.timeout)
    print(message)
    if not ok:
        worst = max(worst, 2)
    print({0: "audit: clean", 1: "audit: FAILED", 2: "audit: INCOMPLETE"}[worst])
    return worst


if __name__ == "__main__":
    sys.exit(main())
