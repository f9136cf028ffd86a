"""Speed and accuracy comparisons measured side by side in one run: `python3 -m benchmarks.NAME`."""
