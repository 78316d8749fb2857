"""AWS Nitro Enclaves: attestation documents from the NSM device (``/dev/nsm``)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import cbor2

from teeprover.attestation.evidence._device import _iowr
from teeprover.errors import Unavailable

# ---------------------------------------------------------------------------------------------- AWS Nitro NSM

NSM_RESPONSE_MAX = 0x3000  # NSM_RESPONSE_MAX_SIZE in the Linux nsm driver


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _NsmMessage(ctypes.Structure):
    _fields_ = [("request", _IoVec), ("response", _IoVec)]


NSM_IOCTL_REQUEST = _iowr(0x0A, 0, ctypes.sizeof(_NsmMessage))  # _IOWR(0x0A, 0, struct nsm_message)


def encode_nsm_request(*, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> bytes:
    """CBOR of the serde-encoded ``Request::Attestation { user_data, nonce, public_key }``."""
    return cbor2.dumps({"Attestation": {"user_data": user_data, "nonce": nonce, "public_key": public_key}})


def decode_nsm_response(data: bytes) -> bytes:
    """The document from ``Response::Attestation { document }``; ``Response::Error(code)`` raises."""
    try:
        response = cbor2.loads(data)
    except Exception as exc:  # noqa: BLE001
        raise Unavailable(f"NSM answered with undecodable bytes: {exc}") from None
    if isinstance(response, dict) and "Error" in response:
        raise Unavailable(f"NSM refused the attestation request: {response['Error']!r:.60}")
    try:
        document = response["Attestation"]["document"]
    except Exception:  # noqa: BLE001
        raise Unavailable("NSM answered without an attestation document") from None
    if not isinstance(document, bytes):
        raise Unavailable("NSM attestation document is not a byte string")
    return document


def nsm_ioctl_transport(device: str = "/dev/nsm") -> Callable[[bytes], bytes]:
    """Send one request to the NSM driver with the NSM_IOCTL_REQUEST ioctl."""

    def send(request: bytes) -> bytes:
        import fcntl

        req = ctypes.create_string_buffer(request, len(request))
        resp = ctypes.create_string_buffer(NSM_RESPONSE_MAX)
        msg = _NsmMessage(
            _IoVec(ctypes.cast(req, ctypes.c_void_p), len(request)),
            _IoVec(ctypes.cast(resp, ctypes.c_void_p), NSM_RESPONSE_MAX),
        )
        try:
            fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise Unavailable(f"cannot open {device}: {exc.strerror}") from None
        try:
            fcntl.ioctl(fd, NSM_IOCTL_REQUEST, msg)  # type: ignore[call-overload]
        except OSError as exc:
            raise Unavailable(f"NSM ioctl failed: {exc.strerror}") from None
        finally:
            os.close(fd)
        return resp.raw[: msg.response.iov_len]

    return send


@dataclass
class NitroProvider:
    transport: Callable[[bytes], bytes]
    platform: str = "aws-nitro"

    @classmethod
    def from_device(cls, device: str = "/dev/nsm") -> NitroProvider:
        return cls(nsm_ioctl_transport(device))

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        # The NSM stamps its own time; ``now`` goes into the binding only.
        return decode_nsm_response(
            self.transport(encode_nsm_request(user_data=report_data, nonce=nonce, public_key=public_key))
        )
