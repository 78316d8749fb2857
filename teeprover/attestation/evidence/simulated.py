"""The simulated TEE: development only, NOT SECURE."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from teeprover.attestation.simulated import SimulatedSigner

# ---------------------------------------------------------------------------------------------- simulated


@dataclass
class SimulatedProvider:
    signer: SimulatedSigner
    platform: str = "simulated"

    def attest(self, *, report_data: bytes, nonce: bytes | None, public_key: bytes | None, now: datetime) -> bytes:
        return self.signer.attest(user_data=report_data, nonce=nonce, public_key=public_key, now=now)
