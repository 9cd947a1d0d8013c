module flinkmem.local/benchmarks/loadgen

go 1.22
