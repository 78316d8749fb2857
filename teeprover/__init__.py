"""TEE Prover: Groth16 proofs over BLS12-381 for wallets, from inside a trusted execution environment."""

__version__ = "0.1.0"
