"""What bench scripts share: processes, in-process collectors, bare servers, tracing.

A package (not top-level `bench/*.py`) because `make bench` runs every top-level script.
"""
