"""GCP Confidential VM evidence: a go-tpm-tools ``attest.Attestation`` from the vTPM.

Built the way go-tpm-tools does it (``client.GceAttestationKeyRSA`` + ``Key.Attest``) over our own
TPM 2.0 client (:mod:`teeprover.attestation.tpm`); verified by :mod:`teeprover.attestation.gcp`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from teeprover.attestation import tpm as t
from teeprover.attestation._protobuf import bytes_field, varint_field
from teeprover.attestation.gcp import HASHES, parse_attest, parse_rsa_public, parse_signature, pcr_digest, quote_nonce
from teeprover.errors import Unavailable

GCE_AK_CERT_NV_INDEX_RSA = 0x01C10000
GCE_AK_TEMPLATE_NV_INDEX_RSA = 0x01C10001  # RSA preferred: gcp.py verifies RSASSA quotes only
GCE_AK_TEMPLATE_NV_INDEX_ECC = 0x01C10003
TPM_EVENT_LOG = "sys/kernel/security/tpm0/binary_bios_measurements"
MAX_EVENT_LOG_BYTES = 64 * 1024  # keeps the attestation under gcp.py's 128 KiB bound


def encode_gcp_attestation(
    ak_pub: bytes,
    quotes: list[tuple[int, bytes, bytes, dict[int, bytes]]],
    ak_cert: bytes,
    *,
    event_log: bytes = b"",
    intermediates: tuple[bytes, ...] = (),
) -> bytes:
    """go-tpm-tools ``attest.Attestation``: 1 ak_pub, 2 quotes[] {1 quote, 2 raw_sig, 3 pcrs
    {1 hash, 2 map<uint32, bytes>}}, 3 event_log, 6 ak_cert, 7 intermediate_certs.

    ``quotes``: (bank hash alg, TPMS_ATTEST, TPMT_SIGNATURE, {pcr: value}).  Hand-encoded with
    ``_protobuf``'s two field writers for the reason ``_protobuf`` reads by hand: no generated
    code for this .proto exists here, and the message is six fields.
    """
    out = bytes_field(1, ak_pub)
    for bank, attest, signature, values in quotes:
        entries = b"".join(bytes_field(2, varint_field(1, i) + bytes_field(2, v)) for i, v in sorted(values.items()))
        pcrs = varint_field(1, bank) + entries
        out += bytes_field(2, bytes_field(1, attest) + bytes_field(2, signature) + bytes_field(3, pcrs))
    if event_log:
        out += bytes_field(3, event_log)
    out += bytes_field(6, ak_cert)
    for cert in intermediates:
        out += bytes_field(7, cert)
    return out


def _der_certificate(data: bytes) -> bytes:
    """The DER certificate at the start of an NV index (an index may be padded past its end)."""
    if len(data) < 4 or data[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    if data[1] < 0x80:
        length, head = data[1], 2
    else:
        n = data[1] & 0x7F
        if not 1 <= n <= 3:
            raise ValueError("bad DER length")
        length, head = int.from_bytes(data[2 : 2 + n], "big"), 2 + n
    if head + length > len(data):
        raise ValueError("the DER certificate runs past the end of the NV index")
    return data[: head + length]


@dataclass
class GcpVtpmProvider:
    """GCE vTPM evidence built the way go-tpm-tools does (``GceAttestationKeyRSA``, ``Key.Attest``).

    1. Read the AK template from NV 0x01c10001 and CreatePrimary it under TPM_RH_ENDORSEMENT
       (GCE provisions the template and a certificate for exactly that key).
    2. Read the AK certificate from NV 0x01c10000; it must certify the AK.
    3. For every allocated PCR bank (GetCapability TPM_CAP_PCRS): Quote with qualifyingData =
       ``gcp.quote_nonce(report_data)`` (SHA-256: a 64-byte nonce does not fit a TPM2B_DATA on a
       SHA-384 vTPM), then PCR_Read, and check the quote ourselves (signature, extraData,
       selection, pcrDigest); if a PCR was extended between the two, quote again.
    4. FlushContext the AK and encode an ``attest.Attestation``, with the firmware event log
       when it is readable.
    """

    transport: Callable[[bytes], bytes]  # tpm.TpmTransport; tpm.device_transport() on a VM
    event_log_path: str | None = None
    platform: str = "gcp-vtpm"

    _lock = threading.Lock()  # one attestation at a time on the shared TPM

    @classmethod
    def from_device(cls, device: str = "/dev/tpmrm0", event_log_path: str | None = None) -> GcpVtpmProvider:

        return cls(t.device_transport(device), event_log_path)

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:

        # The nonce and the keys are bound through report_data; the quotes carry its digest.
        with self._lock:
            try:
                return self._attest(quote_nonce(report_data))
            finally:
                close = getattr(self.transport, "close", None)
                if callable(close):
                    close()  # closing /dev/tpmrm0 also flushes whatever is left loaded

    def _attest(self, qualifying: bytes) -> bytes:

        tpm = t.Tpm(self.transport)
        template = tpm.nv_read(GCE_AK_TEMPLATE_NV_INDEX_RSA)
        handle, ak_pub = tpm.create_primary(t.TPM_RH_ENDORSEMENT, template)
        try:
            try:
                ak_key, _ = parse_rsa_public(ak_pub)
            except ValueError as exc:
                raise Unavailable(f"the GCE AK is not an RSA signing key: {exc}") from None
            ak_cert = self._ak_certificate(tpm, ak_key)
            banks = [(alg, pcrs) for alg, pcrs in tpm.allocated_pcrs() if alg in HASHES and pcrs]
            if not banks:
                raise Unavailable("the vTPM reports no allocated PCR bank")
            quotes = [self._quote(tpm, handle, ak_key, alg, pcrs, qualifying) for alg, pcrs in banks]
        finally:
            try:
                tpm.flush(handle)
            except t.TpmError:
                pass  # the descriptor is closed next, and the kernel flushes the AK with it
        return encode_gcp_attestation(ak_pub, quotes, ak_cert, event_log=self._event_log())

    @staticmethod
    def _ak_certificate(tpm: t.Tpm, ak_key: rsa.RSAPublicKey) -> bytes:

        try:
            raw = tpm.nv_read(GCE_AK_CERT_NV_INDEX_RSA)
        except t.TpmError as exc:
            raise Unavailable(f"no GCE AK certificate in NV 0x{GCE_AK_CERT_NV_INDEX_RSA:08x}: {exc.message}") from None
        try:
            der = _der_certificate(raw)
            cert_key = x509.load_der_x509_certificate(der).public_key()
        except Exception as exc:  # noqa: BLE001 - ValueError, UnsupportedAlgorithm, ...: not a usable certificate
            raise Unavailable(f"NV 0x{GCE_AK_CERT_NV_INDEX_RSA:08x} holds no usable certificate: {exc}") from None
        if not isinstance(cert_key, rsa.RSAPublicKey) or cert_key.public_numbers() != ak_key.public_numbers():
            raise Unavailable("the AK certificate in NV does not certify the AK created from the template")
        return der

    @staticmethod
    def _quote(
        tpm: t.Tpm, handle: int, ak_key: rsa.RSAPublicKey, bank: int, pcrs: list[int], qualifying: bytes
    ) -> tuple[int, bytes, bytes, dict[int, bytes]]:

        for _ in range(3):
            attest_bytes, signature = tpm.quote(handle, qualifying, pcrs, bank)
            values = tpm.pcr_read(bank, pcrs)
            try:
                attest = parse_attest(attest_bytes)
                sig_alg, sig_hash, raw = parse_signature(signature)
            except ValueError as exc:
                raise Unavailable(f"the vTPM returned an unparsable quote: {exc}") from None
            if (
                (attest["magic"], attest["type"]) != (t.TPM_GENERATED_VALUE, t.TPM_ST_ATTEST_QUOTE)
                or attest["extra_data"] != qualifying
                or attest["selections"] != [(bank, sorted(values))]
            ):
                raise Unavailable("the vTPM returned a quote of something other than what was asked")
            if sig_alg != t.TPM_ALG_RSASSA or sig_hash not in HASHES:
                raise Unavailable(f"the vTPM signed with scheme 0x{sig_alg:04x}/0x{sig_hash:04x}, not RSASSA")
            try:
                ak_key.verify(raw, attest_bytes, padding.PKCS1v15(), HASHES[sig_hash][1]())
            except InvalidSignature:
                raise Unavailable("the quote signature does not verify with the AK") from None
            if pcr_digest(sig_hash, values) == attest["pcr_digest"]:
                return bank, attest_bytes, signature, values
            # a PCR was extended between Quote and PCR_Read: quote again
        raise Unavailable("PCR values kept changing between quote and read")

    def _event_log(self) -> bytes:
        if not self.event_log_path:
            return b""
        try:
            with open(self.event_log_path, "rb") as f:
                log = f.read(MAX_EVENT_LOG_BYTES + 1)
        except OSError:
            return b""  # securityfs is often not mounted, or not readable by our user
        return log if len(log) <= MAX_EVENT_LOG_BYTES else b""
