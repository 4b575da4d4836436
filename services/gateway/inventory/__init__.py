"""The gateway's inventory: devices the collectors found, their open ports, facts and history.

Data flows one way. A `ResultBatch` arrives on a collector session and is converted at the
edge (`from_proto`) into plain observations; `store.commit.commit_batch` records the batch's
identity, loads the devices of the batch's zone it may touch, lets the pure
`domain.batch.plan_batch` decide identities and per-field changes (`domain.merge`), and
writes the result with a few bulk statements, all in one transaction. The admin API
(`services/gateway/api/inventory_servicer.py`) reads it back through `store.queries`.

Dependencies point inward: `from_proto` and `store` import `domain`; `domain` imports no
protobuf, grpc or SQLAlchemy. The decisions (identity, dedup, concurrency) are recorded in
`docs/adr/0007-inventory-model-and-dedup.md`; the operator's view is `docs/inventory.md`.
"""
