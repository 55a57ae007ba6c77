# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What speedup to expect from a concurrency strategy, and why.

This module names the strategies, gives the best speedup each one can
reach on each kind of work (the kinds are defined in :mod:`.workloads`), and
explains a measured result in one line. It is pure arithmetic, so the
examples below are its tests.
"""

import math
from decimal import ROUND_HALF_UP, Decimal

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
#: Decimals a speedup is stored with (``async_lab.experiment.result``): the
#: verdict and the panels format that value, never a more precise one.
SPEEDUP_DIGITS = 2
# Below this share of its wall time on a CPU, a CPU-bound sequential run was
# slowed down by something else than its work.
BUSY_CPU_SHARE = 0.9


def format_speedup(factor):
    """A speedup as every screen writes it: one decimal below 10, none above.

    Rounded half up from its stored value (:data:`SPEEDUP_DIGITS`), so that
    the same speedup reads the same in the verdict and in the panels.

    >>> format_speedup(1.05), format_speedup(1.049), format_speedup(1.0449), format_speedup(2)
    ('1.1×', '1.1×', '1.0×', '2.0×')
    >>> format_speedup(12.46), format_speedup(None)
    ('12×', '–')
    """
    if factor is None:
        return "–"
    stored = Decimal(repr(round(float(factor), SPEEDUP_DIGITS)))
    return "%s×" % stored.quantize(Decimal("1" if stored >= 10 else "0.1"), ROUND_HALF_UP)


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


def shares_one_gil(strategy, kind):
    """Whether the tasks' CPU work takes turns under one GIL.

    Threads and asyncio run every task in one interpreter; only work that
    releases the GIL (hashlib on large buffers) escapes it.

    >>> shares_one_gil("threads", "io"), shares_one_gil("asyncio", "cpu_gil")
    (True, True)
    >>> shares_one_gil("threads", "cpu_nogil"), shares_one_gil("processes", "io")
    (False, False)
    """
    _check_vocabulary(strategy, kind)
    return strategy in (THREADS, ASYNCIO) and kind != KIND_CPU_NOGIL


def expected(
    ideal, tasks, baseline_seconds, cores, wait_seconds=0.0, serial_seconds=0.0, overhead_seconds=0.0, server_slots=None
):
    """The speedup to expect once the measured costs count, and why: ``(speedup, because, limit)``.

    ``tasks`` equal tasks took ``baseline_seconds`` one after another, so
    ``t`` each: ``wait_seconds`` of waiting (the nominal wait of an I/O
    workload; 0 for CPU work) and the rest CPU work on this machine, the
    client's and the server's alike (the lab calls its own server and
    database). ``ideal`` of them run at once, in ceil(tasks / ideal) waves:

    * waits overlap: each wave waits once;
    * CPU work does not, beyond ``cores`` at a time, nor beyond one task at a
      time for the ``serial_seconds`` of each task that take turns under one
      GIL (threads and asyncio: the client's own CPU time per task);
    * ``overhead_seconds`` come on top, whatever the task (queue_job: the
      same fan-out of no-op jobs, i.e. runner, HTTP and commits);
    * ``server_slots``, when the tasks call a server, is how many calls it
      answers at once (an Odoo server's free HTTP workers): no more tasks
      than that wait at the same time.

    ``because`` names what lowers the speedup below ``ideal`` (None if
    nothing does), and ``limit`` the cost that lowers it most, a key of
    :data:`LIMIT_ADVICE`.

    >>> expected(16, 16, 3.2, cores=2, wait_seconds=0.2)  # pure waits overlap fully
    (16.0, None, None)
    >>> expected(16, 16, 3.46, cores=2, wait_seconds=0.2, serial_seconds=0.006)  # HTTP calls to our server
    (10.485, '16 ms of CPU per task on 2 cores', 'cores')
    >>> expected(16, 16, 3.3, cores=8, wait_seconds=0.2, serial_seconds=0.006)  # the client's GIL then binds
    (11.149, '6 ms of CPU per task under one GIL', 'gil')
    >>> expected(4, 16, 3.2, cores=2, wait_seconds=0.2, overhead_seconds=0.4)  # 0.8 s of waves + 0.4 s
    (2.667, '0.40 s of dispatch', 'dispatch')
    >>> expected(2, 8, 0.16, cores=2, overhead_seconds=0.24)  # dispatch dwarfs 20 ms of hashing
    (0.5, '0.24 s of dispatch', 'dispatch')
    >>> expected(1, 8, 4.0, cores=2, serial_seconds=0.5)  # all CPU under one GIL: no gain, as ideal says
    (1.0, None, None)
    >>> expected(3, 16, 3.2, cores=4, wait_seconds=0.2)  # 6 waves for 16 tasks on 3 slots
    (2.667, '6 waves of 3 for 16 tasks', 'waves')
    >>> expected(16, 16, 3.2, cores=8, wait_seconds=0.2, server_slots=7)  # 16 calls, 7 free HTTP workers
    (5.333, '7 calls answered at once by the server', 'server')
    """
    if tasks < 1 or baseline_seconds <= 0:
        return float(ideal), None, None
    per_task = baseline_seconds / tasks
    wait = min(max(0.0, wait_seconds), per_task)
    cpu = per_task - wait
    serial = min(max(0.0, serial_seconds), cpu)
    concurrent = min(ideal, server_slots) if server_slots else ideal
    waves = math.ceil(tasks / max(1, concurrent))
    limits = {
        "waves": waves * cpu,
        "gil": tasks * serial,
        "cores": tasks * cpu / max(1, cores),
    }
    bound = max(limits, key=limits.get)
    wall = max(0.0, overhead_seconds) + waves * wait + limits[bound]
    speedup = round(min(float(ideal), baseline_seconds / wall), 3)
    if speedup >= 0.95 * ideal:
        return speedup, None, None
    ideal_waves = math.ceil(tasks / max(1, ideal))
    costs = {
        "dispatch": max(0.0, overhead_seconds),
        "server": (waves - ideal_waves) * wait,
        bound: limits[bound] - waves * cpu,
    }
    limit = max(costs, key=costs.get) if max(costs.values()) > 0 else "waves"
    reasons = []
    if overhead_seconds > 0:
        reasons.append(f"{overhead_seconds:.2f} s of dispatch")
    if bound == "gil" and limits["gil"] > limits["waves"]:
        reasons.append(f"{1000 * serial:.0f} ms of CPU per task under one GIL")
    elif bound == "cores" and limits["cores"] > limits["waves"]:
        reasons.append(f"{1000 * cpu:.0f} ms of CPU per task on {cores} {'core' if cores == 1 else 'cores'}")
    if concurrent < ideal:
        reasons.append(f"{concurrent} {'call' if concurrent == 1 else 'calls'} answered at once by the server")
    if not reasons and tasks % max(1, ideal):
        reasons.append(f"{waves} waves of {ideal} for {tasks} tasks")
    return speedup, " and ".join(reasons) or None, limit


#: What to do about the cost that limits a strategy most (see :func:`expected`).
LIMIT_ADVICE = {
    "dispatch": "dispatching a job costs more than its task, so fewer, longer tasks suit queue_job",
    "server": "the called server answers fewer calls at once than are made: it needs more HTTP workers",
    "gil": "the tasks' CPU work takes turns under the one GIL",
    "cores": "the tasks' CPU work needs more cores than there are",
    "waves": "the tasks do not divide evenly among the slots",
}


def _above_ideal(baseline_cpu_share):
    """Why a speedup above its ideal is not what the strategy gained."""
    if baseline_cpu_share is not None and baseline_cpu_share < BUSY_CPU_SHARE:
        return (
            f"the sequential baseline had a CPU only {100 * baseline_cpu_share:.0f} % of its time (other processes "
            "used it), so it reads slower than this work is; run it again on a quieter server"
        )
    return (
        "the sequential baseline ran slower per task than this run did (a busy or throttled CPU, or a cold cache, "
        "while it was timed); run it again to compare"
    )


def verdict(
    strategy, kind, speedup, ideal, cores, expected_speedup=None, because=None, limit=None, baseline_cpu_share=None
):
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

    Measured costs (see :func:`expected`) say what to expect, and why:

    >>> verdict("queue_job", "io", 2.4, 4, cores=2, expected_speedup=2.7,
    ...         because="0.40 s of dispatch")  # doctest: +ELLIPSIS
    'queue_job 2.4× of 4 on I/O-bound work, 2.7× expected after 0.40 s of dispatch: jobs wait side by side, ...'
    >>> verdict("queue_job", "cpu_nogil", 0.6, 2, cores=2, expected_speedup=0.5,
    ...         because="0.24 s of dispatch", limit="dispatch")  # doctest: +ELLIPSIS
    'queue_job 0.6× of 2 cores, 0.5× expected after 0.24 s of dispatch: dispatching a job costs more than its task, ...'
    >>> verdict("threads", "io", 4.9, 16, cores=2, expected_speedup=4.8,
    ...         because="7 calls answered at once by the server", limit="server")  # doctest: +ELLIPSIS
    'threads 4.9× of 16 on I/O-bound work, 4.8× expected after 7 calls ...: the called server answers fewer ...'

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

    Above the ideal, it says why the figure cannot be taken as it is:

    >>> verdict("asyncio", "cpu_nogil", 2.4, 2, cores=2, baseline_cpu_share=0.35)  # doctest: +ELLIPSIS
    'asyncio 2.4× of 2 cores, above the ideal: the sequential baseline had a CPU only 35 % of its time...'
    >>> verdict("threads", "io", 8.4, 8, cores=2)  # doctest: +ELLIPSIS
    'threads 8.4× of 8 on I/O-bound work, above the ideal: the sequential baseline ran slower per task...'
    """
    _check_vocabulary(strategy, kind)
    head = f"{strategy} {format_speedup(speedup)}"
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
    if because and expected_speedup is not None:
        head += f", {format_speedup(expected_speedup)} expected after {because}"
    if round(speedup, SPEEDUP_DIGITS) > ideal:
        return head + ", above the ideal: " + _above_ideal(baseline_cpu_share)
    if ideal <= 1:
        cause = "a single core" if limited_by_cores else "a single task or a pool of one"
        return head + ": nothing could overlap, " + cause
    if because and expected_speedup is not None and expected_speedup < ideal * SHORTFALL_EFFICIENCY:
        if speedup >= expected_speedup * SHORTFALL_EFFICIENCY:
            return head + ": " + LIMIT_ADVICE.get(limit, "these costs outweigh the gain of running tasks at once")
    if speedup / ideal < SHORTFALL_EFFICIENCY and (
        expected_speedup is None or speedup < expected_speedup * SHORTFALL_EFFICIENCY
    ):
        return head + ": far below ideal; " + _SHORTFALL_CAUSES[strategy]
    return head + ": " + _GOOD_REASONS[strategy, kind]
