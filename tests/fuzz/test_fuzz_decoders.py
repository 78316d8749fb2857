"""Short fuzz run of every decoder that takes outside bytes (the long run: ``make fuzz``).

Law: for any input, a decoder returns or raises a ``TeeProverError``; it never
raises anything else, never hangs (watchdog) and never needs unbounded memory.
"""

from __future__ import annotations

import pytest

from tests.fuzz import _harness, targets

EXAMPLES = 120  # per target: ~19 targets stay well under 60 s together

_TARGETS = {t.name: t for t in targets.all_targets()}


def test_every_known_decoder_is_a_target() -> None:
    missing = [name for name in targets.TARGET_NAMES if name not in _TARGETS]
    # r1cs/wtns/zkey and the attestation samples may be absent on a partial checkout; the rest must be there.
    assert [m for m in missing if not m.startswith(("snarkjs-r1cs", "snarkjs-wtns", "snarkjs-zkey",
                                                   "attestation-"))] == []


@pytest.mark.parametrize("name", sorted(_TARGETS))
def test_decoder_only_raises_domain_errors(name: str) -> None:
    outcome = _harness.run(_TARGETS[name], EXAMPLES, derandomize=True)
    assert outcome.calls >= EXAMPLES // 2, outcome.summary()


def test_the_harness_catches_a_foreign_exception_and_a_hang() -> None:
    def crashy(data: bytes) -> None:
        if len(data) > 3:
            raise IndexError("decoder bug")

    with pytest.raises(IndexError):
        _harness.run(_harness.Target("crashy", crashy, lambda: [b"abcdef"]), 50)

    def sleepy(data: bytes) -> None:
        import time

        time.sleep(5)

    with pytest.raises(_harness.FuzzHang):
        _harness.call(_harness.Target("sleepy", sleepy, lambda: [b""], deadline_s=0.2), b"", _harness.Outcome())


@pytest.mark.skipif("attestation-aws-nitro" not in _TARGETS, reason="attestation samples are not next to the repo")
def test_regression_nitro_timestamp_beyond_year_9999_is_a_structure_failure() -> None:
    target = _TARGETS["attestation-aws-nitro"]
    sample = bytearray(target.seed_bytes()[0])
    at = sample.index(b"itimestamp\x1b") + len(b"itimestamp\x1b")  # the uint64 milliseconds
    sample[at] ^= 0x01  # 0x00000191... → 0x01000191...: year ~2.3 million
    _harness.call(target, bytes(sample), _harness.Outcome())


@pytest.mark.skipif("attestation-sev-snp" not in _TARGETS, reason="attestation samples are not next to the repo")
def test_regression_snp_vcek_with_a_duplicate_extension_is_a_named_failure() -> None:
    target = _TARGETS["attestation-sev-snp"]
    sample = bytearray(target.seed_bytes()[0])
    oid_404 = bytes.fromhex("060a2b060104019c7801030404")  # extension 1.3.6.1.4.1.3704.1.3.4 (SNP TCB)
    at = sample.index(oid_404) + len(oid_404) - 2
    sample[at] = 0x05  # …3.4 → …3.5: the VCEK now carries 1.3.6.1.4.1.3704.1.3.5 twice
    _harness.call(target, bytes(sample), _harness.Outcome())


def test_regression_ptau_without_section_6_is_malformed(tmp_path) -> None:
    import random

    from teeprover.errors import MalformedEncoding
    from teeprover.snarkjs import ptau

    ptau.generate_dev_ptau(2, tmp_path / "dev.ptau", random.Random(7))
    sections = {k: v for k, v in ptau.read_ptau(tmp_path / "dev.ptau").sections.items() if k not in (1, 6)}
    ptau.write_ptau(tmp_path / "no6.ptau", 2, sections)
    with pytest.raises(MalformedEncoding):
        ptau.read_ptau(tmp_path / "no6.ptau").lagrange_params(4)


def test_a_spent_budget_stops_the_run_and_is_not_reported_as_a_bug() -> None:
    # Regression: hypothesis wrapped BudgetSpent in a FlakyFailure, so every `make fuzz` target that reached
    # its budget was printed as a BUG.
    import time

    target = _TARGETS["preimage-cbor"]
    outcome = _harness.Outcome(stop_at=time.monotonic() + 0.3)
    with pytest.raises(_harness.BudgetSpent):
        _harness.run(target, 1_000_000, outcome)
    assert 0 < outcome.calls < 1_000_000
