"""The benchmarks. XVF_BENCH_SMALL=1 (exactly) picks every benchmark's quick sizes, for a smoke run."""

import os

SMALL = os.environ.get("XVF_BENCH_SMALL") == "1"
