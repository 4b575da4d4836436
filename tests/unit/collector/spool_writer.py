"""A child process for the torn-write test: writes batches to a spool until it is killed.

    python -m tests.unit.collector.spool_writer DATA_DIR RUN_ID

Prints `put N` once batch N is committed (so it must be found after any crash), and
`ack N` just before it asks for batch N to be deleted (it may or may not be gone after a
crash). Batch sizes vary, so writes cross page boundaries at random.
"""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import structlog

from outpost.agent.v1 import agent_pb2
from services.collector.store.spool import Spool


async def write_until_killed(data_dir: Path, run_id: str) -> None:
    spool = Spool.open(data_dir, max_bytes=1 << 30)
    rng = random.Random()
    sequence = 0
    while True:
        sequence += 1
        devices = [
            agent_pb2.DeviceObservation(ip=f"10.0.{sequence % 250}.{i}", hostname="h" * rng.randrange(0, 3000))
            for i in range(rng.randrange(1, 30))
        ]
        await spool.put_batch(agent_pb2.ResultBatch(job_run_id=run_id, attempt=1, sequence=sequence, devices=devices))
        print(f"put {sequence}", flush=True)
        if sequence % 4 == 0:
            print(f"ack {sequence - 2}", flush=True)  # before: the delete may land before a kill
            spool.ack(run_id, 1, sequence - 2)


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))  # stdout is for the test
    asyncio.run(write_until_killed(Path(sys.argv[1]), sys.argv[2]))
