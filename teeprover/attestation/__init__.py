"""TEE attestation: evidence collection (server side) and verification (library + CLI).

See docs/attestation.md.  Public API::

    verify(evidence, *, platform, roots=None, now, nonce=None, expected=None,
           allow_simulated=False, allow_debug=False, report_data=None, max_age=None) -> Result
    collect(platform, nonce, tls_spki_sha256, hpke_public_key, now, *, provider=None) -> dict
    binding_digest(*, nonce, tls_spki_sha256, hpke_public_key, timestamp_ms) -> bytes
    create_manifest / sign_manifest / load_manifest, ManifestKeys, ManifestPublicKeys
"""

from .binding import binding_bytes, binding_digest
from .evidence import collect, detect_platform
from .manifest import Manifest, ManifestKeys, ManifestPublicKeys, create_manifest, load_manifest, sign_manifest
from .result import STEPS, Result
from .roots import Roots, default_roots
from .snp import snp_evidence
from .tdx import tdx_evidence
from .verify import PLATFORMS, verify

__all__ = [
    "PLATFORMS",
    "STEPS",
    "Manifest",
    "ManifestKeys",
    "ManifestPublicKeys",
    "Result",
    "Roots",
    "binding_bytes",
    "binding_digest",
    "collect",
    "create_manifest",
    "default_roots",
    "detect_platform",
    "load_manifest",
    "sign_manifest",
    "snp_evidence",
    "tdx_evidence",
    "verify",
]
