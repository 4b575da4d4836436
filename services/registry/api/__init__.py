"""The registry's gRPC edge: protobuf messages in, domain calls, protobuf messages out."""
