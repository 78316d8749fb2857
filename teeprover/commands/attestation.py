"""``teeprover attestation ...``: verify evidence and create signed manifests.

    attestation get --url URL [--nonce HEX] [-o FILE]      (prints the nonce and the verify command)
    attestation verify FILE [--platform P] [--at RFC3339] [--nonce HEX] [--expect MANIFEST
                        --manifest-keys PUBKEYS] [--roots CERTS|JWKS --issuer URL]
                        [--vek DER] [--ask DER] [--collateral JSON]
                        [--allow-simulated] [--allow-debug] [--json]
    attestation manifest keygen --out SECRET.json --public PUB.json
    attestation manifest create --keys SECRET.json --git-commit C --image-digest D
                        [--timestamp T] --ref PLATFORM:KEY=HEX[,KEY=HEX...] ... --out FILE

Exit codes of ``verify``: 0 valid, 1 invalid (the failing step is named), 2 malformed
input or usage (unreadable file, bad hex, bad manifest); of ``get``: 0, 1 when the
server answered that it could not attest, 2 refused, 3 server unreachable.  FILE may be raw bytes or base64
text (as in the ``attestation`` field of GET /attestation).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from teeprover.attestation import _x509
from teeprover.attestation.binding import binding_digest
from teeprover.attestation.manifest import (
    ManifestKeys,
    ManifestPublicKeys,
    create_manifest,
    load_manifest,
    sign_manifest,
)
from teeprover.attestation.roots import Roots, default_roots
from teeprover.attestation.snp import snp_evidence
from teeprover.attestation.tdx import tdx_evidence
from teeprover.attestation.verify import PLATFORMS, verify
from teeprover.errors import TeeProverError

EXIT_VALID, EXIT_INVALID, EXIT_MALFORMED = 0, 1, 2
# Results whose failing step means "these bytes are not evidence at all".
MALFORMED_STEPS = ("platform", "parse")


class _Usage(Exception):
    pass


def register(subparsers: Any) -> None:
    """Add the ``attestation`` command to a parent parser's subparsers."""
    parser = subparsers.add_parser("attestation", help="verify TEE attestation evidence, sign measurement manifests")
    sub = parser.add_subparsers(dest="attestation_command", required=True)

    v = sub.add_parser("verify", help="verify one piece of evidence")
    v.add_argument("file", type=Path)
    v.add_argument("--platform", choices=PLATFORMS,
                   help="evidence platform (default: the 'platform' of a document saved by `attestation get`)")
    v.add_argument("--at", help="verification instant, RFC 3339 (default: now)")
    v.add_argument("--nonce", help="expected nonce, hex")
    v.add_argument("--report-data", help="expected 64-byte report/user data, hex")
    v.add_argument("--expect", type=Path, help="signed measurement manifest")
    v.add_argument("--manifest-keys", type=Path, help="trusted manifest public keys (JSON from 'manifest keygen')")
    v.add_argument("--roots", type=Path, help="trust anchors instead of the pinned ones (PEM/DER; JWKS JSON for azure)")
    v.add_argument("--issuer", help="azure: the allow-listed issuer the --roots JWKS belongs to")
    v.add_argument("--vek", type=Path, help="sev-snp: FILE is a raw report; VCEK/VLEK certificate (DER)")
    v.add_argument("--ask", type=Path, help="sev-snp: ASK/ASVK certificate (DER), optional")
    v.add_argument("--collateral", type=Path, help="tdx: FILE is a raw quote; DCAP collateral JSON")
    v.add_argument("--allow-simulated", action="store_true")
    v.add_argument("--allow-debug", action="store_true")
    v.add_argument("--json", action="store_true", help="print the full result as JSON")
    v.set_defaults(func=_cmd_verify)

    g = sub.add_parser("get", help="fetch the server's attestation document (JSON) through the REST API")
    g.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:6300")
    g.add_argument("--nonce", help="nonce to bind, hex (default: 32 random bytes)")
    g.add_argument("-o", "--out", type=Path, help="write the document here (default: stdout)")
    g.set_defaults(func=_cmd_get)

    m = sub.add_parser("manifest", help="measurement manifests (Ed25519 + ML-DSA-65)")
    msub = m.add_subparsers(dest="manifest_command", required=True)
    kg = msub.add_parser("keygen", help="generate a manifest signing key pair")
    kg.add_argument("--out", type=Path, required=True, help="secret key file (JSON)")
    kg.add_argument("--public", type=Path, required=True, help="public key file (JSON)")
    kg.set_defaults(func=_cmd_keygen)
    cr = msub.add_parser("create", help="create and sign a manifest")
    cr.add_argument("--keys", type=Path, required=True, help="secret key file from keygen")
    cr.add_argument("--git-commit", required=True)
    cr.add_argument("--image-digest", required=True)
    cr.add_argument("--timestamp", help="RFC 3339 (default: now)")
    cr.add_argument(
        "--ref",
        action="append",
        required=True,
        metavar="PLATFORM:KEY=HEX[,KEY=HEX]",
        help="one accepted reference value, e.g. aws-nitro:pcr0=ab..,pcr1=cd..; repeatable",
    )
    cr.add_argument("--out", type=Path, required=True)
    cr.set_defaults(func=_cmd_create)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _Usage(f"cannot read {path}: {exc.strerror}") from None


def _evidence_bytes(data: bytes) -> bytes:
    stripped = data.strip()
    if stripped and all(
        c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n" for c in stripped
    ):
        try:
            return base64.b64decode(stripped, validate=False)
        except binascii.Error:
            pass
    return data


def _hex(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    text = value.strip()
    bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        raise _Usage(f"{what} must be hex digits (0-9, a-f); {bad!r} is not one")
    if len(text) % 2:
        raise _Usage(f"{what} has an odd number of hex digits ({len(text)}); a byte is two")
    return bytes.fromhex(text)


# The library's policy messages name its keyword arguments; on the command line they are flags.
_FLAG_NAMES = {"allow_simulated": "--allow-simulated", "allow_debug": "--allow-debug"}


def _flag_words(message: str) -> str:
    for name, flag in _FLAG_NAMES.items():
        message = message.replace(name, flag)
    return message


def _when(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _Usage(f"--at {text!r} is not RFC 3339") from None
    if when.tzinfo is None:
        raise _Usage("--at needs a time zone (e.g. Z)")
    return when


def _cmd_get(args: argparse.Namespace) -> int:
    import os
    import shlex

    from teeprover.client import Client

    nonce = (_hex(args.nonce, "--nonce") if args.nonce else None) or os.urandom(32)
    with Client(args.url) as client:
        doc = client.attestation(nonce)
    text = json.dumps(doc, indent=2) + "\n"
    # The next step needs the nonce; with the document on stdout this goes to stderr.
    notes = sys.stdout if args.out else sys.stderr
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    if doc.get("error"):
        print(f"teeprover: the server could not attest: {doc['error']}", file=sys.stderr)
        return EXIT_INVALID
    verify_cmd = ["teeprover", "attestation", "verify", str(args.out or "DOC.json"), "--nonce", nonce.hex()]
    if doc.get("platform") == "simulated":
        verify_cmd.append("--allow-simulated")  # a simulated TEE: NOT SECURE, development only
    print(f"nonce: {nonce.hex()}", file=notes)
    print(f"platform: {doc.get('platform')}", file=notes)
    print(f"verify with: {shlex.join(verify_cmd)}", file=notes)
    return EXIT_VALID


def _served_document(raw: bytes) -> dict[str, Any] | None:
    """A document saved by ``attestation get`` (the ``GET /attestation`` JSON), else None."""
    if not raw.lstrip().startswith(b"{"):
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "attestation" in doc and "platform" in doc else None


def _expected_binding(doc: dict[str, Any], nonce: bytes | None) -> bytes | None:
    """The report data a served document must carry: its binding of the nonce, keys and timestamp."""
    meta = doc.get("metadata") or {}
    binding = meta.get("binding") or {}
    try:
        return binding_digest(
            nonce=nonce,
            tls_spki_sha256=bytes.fromhex(binding["tls_spki_sha256"]) if binding.get("tls_spki_sha256") else None,
            hpke_public_key=bytes.fromhex(binding["hpke_public_key"]) if binding.get("hpke_public_key") else None,
            timestamp_ms=int(meta["timestamp_ms"]),
        )
    except (KeyError, TypeError, ValueError):
        raise _Usage("the document's metadata carries no usable key binding") from None


def _cmd_verify(args: argparse.Namespace) -> int:
    raw = _read(args.file)
    doc = _served_document(raw)
    if doc is not None:
        # A served document: verify its evidence and that the report data binds the served keys.
        args.platform = args.platform or doc["platform"]
        if not args.report_data:
            nonce = _hex(args.nonce, "--nonce") if args.nonce else _hex(doc.get("nonce") or None, "nonce")
            args.report_data = _expected_binding(doc, nonce).hex()  # type: ignore[union-attr]
        try:
            raw = base64.b64decode(doc["attestation"] or "", validate=True)
        except (binascii.Error, TypeError):
            raise _Usage("the document's attestation field is not base64") from None
    if args.platform is None:
        raise _Usage("--platform is required for raw evidence")
    if args.platform == "sev-snp" and args.vek:
        report = raw if len(raw) == 1184 else _hex(raw.decode(errors="replace").strip(), "report") or b""
        evidence = snp_evidence(report, _read(args.vek), _read(args.ask) if args.ask else None)
    elif args.platform == "tdx" and args.collateral:
        evidence = tdx_evidence(raw, _read(args.collateral).decode())
    elif args.platform == "azure":
        evidence = raw.strip()
    else:
        evidence = _evidence_bytes(raw)
    roots = None
    if args.roots:
        data = _read(args.roots)
        if args.platform == "azure":
            if not args.issuer:
                raise _Usage("--roots for azure needs --issuer")
            try:
                roots = Roots(jwks={args.issuer: json.loads(data)})
            except ValueError:
                raise _Usage("--roots is not JSON") from None
        else:
            try:
                certs = _x509.load_pem_or_der(data)
            except ValueError:
                raise _Usage("--roots holds no certificate") from None
            roots = Roots(anchors=tuple(certs), intermediates=default_roots(args.platform).intermediates)
    expected = None
    if args.expect:
        if not args.manifest_keys:
            raise _Usage("--expect needs --manifest-keys (the trusted manifest signer)")
        try:
            keys = ManifestPublicKeys.from_json(json.loads(_read(args.manifest_keys)))
            expected = load_manifest(_read(args.expect), keys)
        except (TeeProverError, ValueError) as exc:
            raise _Usage(f"manifest: {getattr(exc, 'message', exc)}") from None
    result = verify(
        evidence,
        platform=args.platform,
        roots=roots,
        now=_when(args.at),
        nonce=_hex(args.nonce, "--nonce"),
        expected=expected,
        allow_simulated=args.allow_simulated,
        allow_debug=args.allow_debug,
        report_data=_hex(args.report_data, "--report-data"),
    )
    if args.json:
        print(json.dumps(result.to_json(), indent=2, sort_keys=True, default=str))
    elif result.ok:
        print(f"valid: {args.platform} evidence verified")
    else:
        print(f"invalid: step {result.failed_step}: {_flag_words(result.message)}")
    if result.ok:
        return EXIT_VALID
    return EXIT_MALFORMED if result.failed_step in MALFORMED_STEPS else EXIT_INVALID


def _cmd_keygen(args: argparse.Namespace) -> int:
    keys = ManifestKeys.generate()
    args.out.write_text(json.dumps(keys.to_json(), indent=2) + "\n")
    args.out.chmod(0o600)
    args.public.write_text(json.dumps(keys.public().to_json(), indent=2) + "\n")
    print(f"wrote {args.out} (secret) and {args.public}")
    return 0


def _cmd_create(args: argparse.Namespace) -> int:
    try:
        keys = ManifestKeys.from_json(json.loads(_read(args.keys)))
    except ValueError:
        raise _Usage("--keys is not JSON") from None
    platforms: dict[str, list[dict[str, str]]] = {}
    for spec in args.ref:
        platform, _, pairs = spec.partition(":")
        ref = {}
        for pair in pairs.split(","):
            key, eq, value = pair.partition("=")
            if not eq:
                raise _Usage(f"--ref {spec!r}: expected KEY=HEX")
            ref[key.strip()] = value.strip()
        platforms.setdefault(platform, []).append(ref)
    manifest = create_manifest(
        git_commit=args.git_commit,
        image_digest=args.image_digest,
        timestamp=args.timestamp or datetime.now(UTC).replace(microsecond=0),
        platforms=platforms,
    )
    args.out.write_bytes(sign_manifest(manifest, keys))
    print(f"wrote {args.out}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch a parsed ``attestation`` command; usage and malformed input exit 2."""
    from teeprover.commands._common import fail

    try:
        return int(args.func(args))
    except _Usage as exc:
        print(f"teeprover: {exc}", file=sys.stderr)
        return EXIT_MALFORMED
    except TeeProverError as exc:
        return fail(exc)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m teeprover.commands.attestation attestation ...``)."""
    parser = argparse.ArgumentParser(prog="teeprover")
    register(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
