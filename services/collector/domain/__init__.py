"""The collector's rules as plain values and functions: no I/O, no grpc, no protobuf."""
