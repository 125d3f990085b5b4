"""Serving benchmarks: NVIDIA's aiperf as the load generator, our own report around its JSON export.

aiperf lives in its own virtualenv (`make bench-setup`); this package only builds its command line, runs it
as a subprocess and turns the per-concurrency exports into tables, plots and a JSON summary.
"""
