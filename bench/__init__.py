"""Benchmark harness: ``python -m bench [WORKLOAD ...]`` (``make bench``).

Each workload times sentinel and, where one exists, a bare reference doing the same work in the
same run, and reports both with their ratio: machines are noisy, ratios much less so. Results go
to ``bench/results/<workload>.json``. Workloads that need ``../shared/data`` skip when it is absent.
"""
