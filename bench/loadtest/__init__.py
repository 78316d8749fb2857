"""``make loadtest``: the specification's load plan (sustained, spike, stress) through Envoy, scaled to 2 cores.

``python -m bench.loadtest`` starts the real stack, drives it with Locust in headless mode
(``bench/loadtest/locustfile.py``), verifies every proof it gets back, samples each process's
peak RSS and writes ``bench/results/loadtest.{json,md}`` and ``loadtest-latency.png``.
``docs/loadtest.md`` says how the plan was scaled and holds the measured tables.
"""
