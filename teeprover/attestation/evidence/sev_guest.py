"""SEV-SNP through ``/dev/sev-guest`` (kernels without configfs-tsm)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from teeprover.attestation.evidence._device import _iowr, snp_evidence_from_cert_table
from teeprover.attestation.snp import REPORT_SIZE
from teeprover.errors import Unavailable

# ---------------------------------------------------------------------------------------------- /dev/sev-guest
# The SNP guest driver's ioctl ABI, include/uapi/linux/sev-guest.h (struct layouts mirrored with ctypes).


class SnpReportReq(ctypes.Structure):
    _fields_ = [("user_data", ctypes.c_uint8 * 64), ("vmpl", ctypes.c_uint32), ("rsvd", ctypes.c_uint8 * 28)]


class SnpExtReportReq(ctypes.Structure):
    _fields_ = [("data", SnpReportReq), ("certs_address", ctypes.c_uint64), ("certs_len", ctypes.c_uint32)]


class SnpReportResp(ctypes.Structure):
    _fields_ = [("data", ctypes.c_uint8 * 4000)]


class SnpGuestRequestIoctl(ctypes.Structure):
    _fields_ = [("msg_version", ctypes.c_uint8), ("req_data", ctypes.c_uint64), ("resp_data", ctypes.c_uint64),
                ("exitinfo2", ctypes.c_uint64)]


SNP_GET_EXT_REPORT = _iowr(ord("S"), 0x2, ctypes.sizeof(SnpGuestRequestIoctl))
SNP_VMM_ERR_INVALID_LEN = 1  # exitinfo2 >> 32 when the certificate buffer is too small
PAGE = 4096
SNP_CERTS_MAX = 0x4000 * 4  # SEV_FW_BLOB_MAX_SIZE

SevGuestTransport = Callable[[int, SnpGuestRequestIoctl], None]


def sev_guest_transport(device: str = "/dev/sev-guest") -> SevGuestTransport:
    def send(request: int, arg: SnpGuestRequestIoctl) -> None:
        import fcntl

        fd = os.open(device, os.O_RDWR)
        try:
            fcntl.ioctl(fd, request, arg)  # type: ignore[call-overload]
        finally:
            os.close(fd)

    return send


@dataclass
class SevGuestProvider:
    """SEV-SNP fallback without configfs-tsm: ``SNP_GET_EXT_REPORT`` on ``/dev/sev-guest``.

    The extended request returns the signed report (MSG_REPORT_RSP: status, size, report at
    0x20) and the host's certificate table (VCEK/VLEK, ASK) in the buffer we pass; a buffer
    the host finds too small comes back with the needed length, and we ask once more.
    """

    transport: SevGuestTransport
    platform: str = "sev-snp"

    @classmethod
    def from_device(cls, device: str = "/dev/sev-guest") -> SevGuestProvider:
        return cls(sev_guest_transport(device))

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        certs_len = PAGE * 4
        for _ in range(2):
            req = SnpExtReportReq()
            ctypes.memmove(req.data.user_data, report_data, 64)
            certs = ctypes.create_string_buffer(certs_len)
            req.certs_address = ctypes.addressof(certs)
            req.certs_len = certs_len
            resp = SnpReportResp()
            arg = SnpGuestRequestIoctl(msg_version=1, req_data=ctypes.addressof(req),
                                       resp_data=ctypes.addressof(resp))
            try:
                self.transport(SNP_GET_EXT_REPORT, arg)
            except OSError as exc:
                needed = int(req.certs_len)
                if arg.exitinfo2 >> 32 == SNP_VMM_ERR_INVALID_LEN and certs_len < needed <= SNP_CERTS_MAX:
                    certs_len = -(-needed // PAGE) * PAGE
                    continue
                raise Unavailable(f"/dev/sev-guest SNP_GET_EXT_REPORT failed: {exc} "
                                  f"(exitinfo2 0x{arg.exitinfo2:x})") from None
            break
        else:
            raise Unavailable("/dev/sev-guest kept asking for a larger certificate buffer")
        raw = bytes(resp.data)
        status, size = int.from_bytes(raw[0:4], "little"), int.from_bytes(raw[4:8], "little")
        report = raw[0x20:0x20 + size]
        if status != 0 or size != REPORT_SIZE or report[0x50:0x90] != report_data:
            raise Unavailable(f"SEV-SNP firmware answered status {status} with a {size}-byte report "
                              "that does not carry our report_data")
        return snp_evidence_from_cert_table(report, certs.raw, "certificate buffer")
