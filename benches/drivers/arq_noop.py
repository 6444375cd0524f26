"""The no-op workload through ARQ (the job queue Samokoder uses), for `benches/streams.rs`.

Usage: python3 arq_noop.py PORT N
Enqueues N no-op jobs into a fresh queue, then runs an ARQ worker in burst mode until the
queue is empty, and prints one JSON line: {"jobs": N, "enqueue_s": ..., "process_s": ...}.
"""

import asyncio
import json
import sys
import time

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def noop(ctx):
    return None


async def main(port: int, n: int) -> None:
    settings = RedisSettings(host="127.0.0.1", port=port)
    queue = f"arq:bench:{time.time_ns()}"
    pool = await create_pool(settings, default_queue_name=queue)
    start = time.perf_counter()
    for _ in range(n):
        await pool.enqueue_job("noop", _queue_name=queue)
    enqueued = time.perf_counter()
    worker = Worker(
        functions=[noop],
        redis_settings=settings,
        queue_name=queue,
        burst=True,
        handle_signals=False,
        keep_result=0,
        poll_delay=0.01,
    )
    await worker.async_run()
    done = time.perf_counter()
    assert worker.jobs_complete == n, (worker.jobs_complete, n)
    await worker.close()
    await pool.aclose()
    print(json.dumps({"jobs": n, "enqueue_s": enqueued - start, "process_s": done - enqueued}))


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
