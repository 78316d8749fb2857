"""Deprecated API methods and the response headers that announce them.

``Deprecation`` is RFC 9745 (``@`` + Unix time of the deprecation date), ``Link`` with
``rel="successor-version"`` (RFC 5829) names the replacement.  The prover sends them as gRPC
initial metadata on a success; the gateway adds them to every REST response of the route,
errors included (services/gateway/render.py, ``Policy.response_headers``).
"""

from __future__ import annotations

PROVE_TX_DEPRECATION = "@1767225600"  # 2026-01-01T00:00:00Z
PROVE_TX_HEADERS: tuple[tuple[str, str], ...] = (
    ("deprecation", PROVE_TX_DEPRECATION),
    ("link", '</prove>; rel="successor-version"'),
)
