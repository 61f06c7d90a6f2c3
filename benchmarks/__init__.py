"""Speed and memory benchmarks: scripts that print figures and write JSON to benchmarks/results/."""
