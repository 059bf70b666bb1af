"""Performance benchmarks (not tests): what the harness costs and what pruning buys.

Every claim is a ratio against a reference measured in the same run, interleaved, because the
machines these run on are shared and absolute timings drift. `python -m bench.run_all` (or
`make bench`) runs the seven of run_all.BENCHMARKS; each script also runs alone and writes
bench/results/NAME.json. gpu_check runs apart (`make gpu-check`); imagefolder writes the JPEG
tree the loading benchmarks (and tests) read.
"""
