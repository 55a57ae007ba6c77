# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What speedup to expect from a concurrency strategy, and why.

This module names the strategies, gives the best speedup each one can
reach on each kind of work (the kinds are defined in :mod:`.workloads`), and
explains a measured result in one line. It is pure arithmetic, so the
examples below are its tests.
"""

from .workloads import KIND_CONTROL, KIND_CPU_GIL, KIND_CPU_NOGIL, KIND_IO, KINDS

SEQUENTIAL = "sequential"
THREADS = "threads"
PROCESSES = "processes"
ASYNCIO = "asyncio"
QUEUE_JOB = "queue_job"
STRATEGIES = (SEQUENTIAL, THREADS, PROCESSES, ASYNCIO, QUEUE_JOB)

# queue_job's root channel runs one job at a time unless configured otherwise.
DEFAULT_CHANNEL_CAPACITY = 1

# Below this share of the ideal speedup, the verdict explains the shortfall.
SHORTFALL_EFFICIENCY = 0.5

_GOOD_REASONS = {
    (THREADS, KIND_IO): "waiting overlaps, the GIL is released while blocked",
    (ASYNCIO, KIND_IO): "one event loop overlaps the waits",
    (PROCESSES, KIND_IO): "the waits overlap across processes, "
    "though threads do the same with less start-up and memory",
    (QUEUE_JOB, KIND_IO): "jobs wait side by side, up to the channel capacity",
    (THREADS, KIND_CPU_NOGIL): "hashlib releases the GIL, so the threads use several cores",
    (ASYNCIO, KIND_CPU_NOGIL): "to_thread runs it in threads, and hashlib releases the GIL",
    (PROCESSES, KIND_CPU_GIL): "true parallelism, one interpreter and one GIL per process",
    (PROCESSES, KIND_CPU_NOGIL): "true parallelism, one interpreter and one GIL per process",
    (QUEUE_JOB, KIND_CPU_GIL): "jobs run in separate Odoo worker processes, in parallel",
    (QUEUE_JOB, KIND_CPU_NOGIL): "jobs run in separate Odoo worker processes, in parallel",
}

_SHORTFALL_CAUSES = {
    PROCESSES: "sending tasks and results between processes costs more than "
    "short tasks, or other work competes for the cores",
    THREADS: "the tasks contend on a shared resource (database connections, "
    "busy HTTP workers, small buffers that keep the GIL) or the cores are busy",
    ASYNCIO: "the tasks contend on a shared resource (database connections, "
    "busy HTTP workers, small buffers that keep the GIL) or the cores are busy",
    QUEUE_JOB: "jobs waited for a free channel slot or a free worker, the job runner picked them up late, "
    "or (workers = 0) they ran as threads of one process, sharing its GIL",
}


def _check_vocabulary(strategy, kind):
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}, expected one of {', '.join(STRATEGIES)}")
    if kind not in KINDS:
        raise ValueError(f"unknown kind of work {kind!r}, expected one of {', '.join(KINDS)}")


def ideal_speedup(strategy, kind, tasks, cores, pool_size, capacity=None):
    """Return the best speedup over ``sequential`` that ``strategy`` can reach.

    ``tasks`` tasks of one ``kind`` run on ``cores`` usable cores with a pool
    of ``pool_size`` workers (threads, processes or asyncio's semaphore).
    ``queue_job`` ignores ``pool_size`` and runs at most ``capacity`` jobs at
    once (None: the root channel's default capacity, 1).

    Waiting overlaps up to the pool size, whatever the number of cores:

    >>> ideal_speedup("threads", "io", tasks=8, cores=2, pool_size=8)
    8
    >>> ideal_speedup("asyncio", "io", tasks=8, cores=2, pool_size=3)
    3

    Pure-Python work holds the GIL: only processes use several cores.

    >>> ideal_speedup("threads", "cpu_gil", tasks=8, cores=2, pool_size=8)
    1
    >>> ideal_speedup("asyncio", "cpu_gil", tasks=8, cores=2, pool_size=8)
    1
    >>> ideal_speedup("processes", "cpu_gil", tasks=8, cores=2, pool_size=8)
    2

    Work that releases the GIL runs in parallel threads too:

    >>> ideal_speedup("threads", "cpu_nogil", tasks=4, cores=8, pool_size=4)
    4
    >>> ideal_speedup("asyncio", "cpu_nogil", tasks=4, cores=2, pool_size=4)
    2

    queue_job runs as many jobs as its channel capacity allows:

    >>> ideal_speedup("queue_job", "io", tasks=8, cores=2, pool_size=1, capacity=3)
    3
    >>> ideal_speedup("queue_job", "cpu_gil", tasks=8, cores=2, pool_size=1, capacity=3)
    2
    >>> ideal_speedup("queue_job", "io", tasks=8, cores=2, pool_size=1)
    1
    >>> ideal_speedup("sequential", "io", tasks=8, cores=2, pool_size=1)
    1
    """
    _check_vocabulary(strategy, kind)
    if strategy == SEQUENTIAL or kind == KIND_CONTROL:
        return 1
    if strategy == QUEUE_JOB:
        slots = min(tasks, capacity or DEFAULT_CHANNEL_CAPACITY)
    else:
        slots = min(tasks, pool_size)
    if kind == KIND_IO:
        return slots
    if kind == KIND_CPU_GIL and strategy in (THREADS, ASYNCIO):
        return 1
    return min(slots, cores)


def verdict(strategy, kind, speedup, ideal, cores):
    """Explain in one line a measured ``speedup`` against its ``ideal``.

    ``ideal`` comes from :func:`ideal_speedup`; ``cores`` tells whether the
    cores or the pool (or the task count) set that ideal.

    >>> verdict("threads", "io", 7.8, 8, cores=2)
    'threads 7.8× of 8 on I/O-bound work: waiting overlaps, the GIL is released while blocked'
    >>> verdict("asyncio", "io", 7.9, 8, cores=2)
    'asyncio 7.9× of 8 on I/O-bound work: one event loop overlaps the waits'
    >>> verdict("threads", "cpu_gil", 1.02, 1, cores=2)
    'threads 1.0× on CPU-bound Python: the GIL serialises bytecode, one thread runs at a time'
    >>> verdict("processes", "cpu_gil", 1.9, 2, cores=2)
    'processes 1.9× of 2 cores: true parallelism, one interpreter and one GIL per process'
    >>> verdict("threads", "cpu_nogil", 1.8, 2, cores=2)
    'threads 1.8× of 2 cores: hashlib releases the GIL, so the threads use several cores'

    Far below the ideal, it names the likely causes:

    >>> verdict("processes", "cpu_gil", 0.8, 2, cores=2)  # doctest: +ELLIPSIS
    'processes 0.8× of 2 cores: far below ideal; sending tasks and results between processes ...'
    >>> verdict("processes", "cpu_gil", 1.9, 2, cores=8)
    'processes 1.9× of 2: true parallelism, one interpreter and one GIL per process'
    >>> verdict("processes", "cpu_gil", 1.0, 1, cores=1)
    'processes 1.0× of 1 core: nothing could overlap, a single core'
    >>> verdict("threads", "io", 1.0, 1, cores=2)
    'threads 1.0× of 1 on I/O-bound work: nothing could overlap, a single task or a pool of one'
    >>> verdict("sequential", "io", 1.0, 1, cores=2)
    'sequential 1.0×: the baseline, one task after another'
    """
    _check_vocabulary(strategy, kind)
    head = f"{strategy} {speedup:.1f}×"
    if strategy == SEQUENTIAL:
        return head + ": the baseline, one task after another"
    if kind == KIND_CONTROL:
        return head + " on a control workload: it exercises failures and retries, not speed"
    if kind == KIND_CPU_GIL and strategy in (THREADS, ASYNCIO):
        return head + " on CPU-bound Python: the GIL serialises bytecode, one thread runs at a time"
    limited_by_cores = kind != KIND_IO and ideal == cores
    if kind == KIND_IO:
        head += f" of {ideal} on I/O-bound work"
    elif limited_by_cores:
        head += f" of {ideal} {'core' if ideal == 1 else 'cores'}"
    else:
        head += f" of {ideal}"
    if ideal <= 1:
        cause = "a single core" if limited_by_cores else "a single task or a pool of one"
        return head + ": nothing could overlap, " + cause
    if speedup / ideal < SHORTFALL_EFFICIENCY:
        return head + ": far below ideal; " + _SHORTFALL_CAUSES[strategy]
    return head + ": " + _GOOD_REASONS[strategy, kind]
