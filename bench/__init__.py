"""Benchmarks against real servers: ``python -m bench.ingest --help``. Figures are in BENCHMARKS.md."""
