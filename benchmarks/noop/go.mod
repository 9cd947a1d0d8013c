module flinkmem.local/benchmarks/noop

go 1.22
