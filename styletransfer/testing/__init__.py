"""What the tests and the benchmarks share: random-weight networks, local cluster workers, a headless browser."""
