"""What the inventory decides, as plain dataclasses and functions (no I/O, no ORM, no protobuf)."""
