"""Reproducible benchmarks; ``python -m bench.run_all`` runs them and rewrites docs/benchmarks.md."""
