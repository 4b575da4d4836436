"""The scheduler's rules as plain dataclasses and functions: no grpc, protobuf or SQL."""
