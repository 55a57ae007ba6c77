# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Run N tasks of one workload with a concurrency strategy, and measure.

Strategies run here: ``sequential``, ``threads`` (a ``ThreadPoolExecutor``),
``processes`` (a spawn-context ``ProcessPoolExecutor``) and ``asyncio``
(``asyncio.gather`` under a semaphore). The fifth, ``queue_job``, is run by
the Odoo layer, which builds the same :class:`RunResult` with
:meth:`RunResult.from_outcomes` and scores it with :func:`score`.

What is measured, for every strategy alike:

- ``startup_seconds``: from the run request until the pool is ready and the
  first task is submitted. It is about zero, except for ``processes``: every
  worker is spawned, and waited for, before the clock starts. A spawned
  child starts a fresh interpreter and re-imports the parent's main script
  (under ``odoo-bin`` that imports ``odoo``), which takes a fraction of a
  second per child. This cost is real, so it is reported, but apart from
  ``wall_seconds``, so that the speedup measures parallelism only.
- ``wall_seconds``: from the first task submitted until the last result.
  Speedups compare these.
- ``cpu_seconds``: CPU time of the whole run, start-up and shut-down
  included: this process (all its threads, so also other requests it served
  meanwhile) plus the children it reaped. Process pools are shut down before
  the run ends, so their children are reaped and counted.

A run may have a ``deadline`` (a ``time.monotonic()`` instant). When it
passes, what is left is cancelled and counted in ``cancelled``, and the run
is ``timed_out``: no task is submitted any more, queued ones are cancelled,
a process pool's children are terminated and asyncio's tasks cancelled. A
task already running in a thread cannot be stopped: it ends on its own (a
task is bounded, see :mod:`.workloads`), but the run does not wait for it.
"""

import asyncio
import logging
import math
import multiprocessing
import os
import platform
import resource
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field

from . import child, theory, workloads
from .theory import ASYNCIO, PROCESSES, QUEUE_JOB, SEQUENTIAL, THREADS
from .workloads import Param, WorkloadError

_logger = logging.getLogger(__name__)

STRATEGIES = theory.STRATEGIES
LOCAL_STRATEGIES = (SEQUENTIAL, THREADS, PROCESSES, ASYNCIO)

MAX_TASKS = 64
MAX_POOL_SIZE = 64
_TASKS = Param("tasks", 1, MAX_TASKS, "tasks per run")
_POOL_SIZE = Param("pool_size", 1, MAX_POOL_SIZE, "workers of the pool")

# Seconds for a spawned worker to be ready, an estimate used only by
# predict_seconds: a spawned child re-imports the parent's main script, and
# under odoo-bin that imports odoo.
PROCESS_START_SECONDS = 0.7

# Longest wait for spawned workers to start. Past it the run goes on: a
# worker that never starts breaks the pool, and its tasks count as errors.
STARTUP_TIMEOUT = 60

# The initializer of a spawned child, run by exec() with a semaphore named
# ``ready`` and the parent's PID ``parent`` as its globals. The addon is not
# importable in a fresh interpreter (Odoo adds the addons paths at runtime),
# so the child loads the modules it needs alone, from their files, under
# their usual names: the addon's models are never imported, and workloads'
# functions and exceptions pickle by reference both ways. First the child
# arranges to die with its parent (see lib/child.py). Unpickling a function
# also imports the top package of its module (``odoo``, already imported
# under odoo-bin), so the child does that now, as part of its start-up, then
# reports that it is ready.
_CHILD_BOOTSTRAP = """\
import importlib.util, sys
for name, path in {modules!r}:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
sys.modules[{child!r}].die_with_parent(parent)
__import__({workloads!r})
ready.release()
"""


@dataclass
class RunResult:
    """The measures of one run: N tasks of a workload with one strategy.

    The times are described in the module's docstring. ``spans`` are
    ``(pid, thread, start, end)`` of the successful tasks, in seconds from
    the first task submitted, sorted by start; ``threads`` counts distinct
    ``(pid, thread)`` pairs; failed tasks count in ``errors`` and the first
    failure is described in ``first_error``.
    """

    strategy: str
    workload: str
    tasks: int
    pool_size: int
    wall_seconds: float
    cpu_seconds: float
    startup_seconds: float
    pids: list = field(default_factory=list)
    threads: int = 0
    errors: int = 0
    first_error: str | None = None
    spans: list = field(default_factory=list)
    cancelled: int = 0
    timed_out: bool = False

    @classmethod
    def from_outcomes(
        cls, strategy, workload, pool_size, outcomes, started_at, wall_seconds, cpu_seconds, startup_seconds=0.0
    ):
        """Build the record of a run from the outcome of each of its tasks.

        An outcome is the dict returned by :func:`.workloads.run_task` for a
        task that succeeded, an exception or an error message for a task
        that failed, and :data:`CANCELLED` for a task that the deadline
        cancelled. ``started_at`` is the ``time.time()`` when the first task
        was submitted, the origin of the spans.
        """
        outcomes = list(outcomes)
        done = [outcome for outcome in outcomes if isinstance(outcome, dict)]
        cancelled = sum(1 for outcome in outcomes if outcome is CANCELLED)
        failures = [
            _describe(outcome) for outcome in outcomes if not isinstance(outcome, dict) and outcome is not CANCELLED
        ]
        spans = [
            (task["pid"], task["thread"], round(task["start"] - started_at, 6), round(task["end"] - started_at, 6))
            for task in done
        ]
        spans.sort(key=lambda span: span[2])
        return cls(
            strategy=strategy,
            workload=workload,
            tasks=len(outcomes),
            pool_size=pool_size,
            wall_seconds=round(wall_seconds, 6),
            cpu_seconds=round(cpu_seconds, 6),
            startup_seconds=round(startup_seconds, 6),
            pids=sorted({span[0] for span in spans}),
            threads=len({span[:2] for span in spans}),
            errors=len(failures),
            first_error=failures[0] if failures else None,
            spans=spans,
            cancelled=cancelled,
            timed_out=bool(cancelled),
        )

    def as_dict(self):
        """The record as a JSON-ready dict."""
        return asdict(self)


def _describe(failure):
    if isinstance(failure, BaseException):
        return f"{type(failure).__name__}: {failure}"
    return str(failure)


def usable_cores():
    """Number of cores this process may run on (its CPU affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def environment():
    """What the results depend on: cores, Python version, GIL."""
    is_gil_enabled = getattr(sys, "_is_gil_enabled", None)
    return {
        "cpu_count": os.cpu_count(),
        "cores": usable_cores(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "gil_enabled": is_gil_enabled() if is_gil_enabled else True,
    }


def _check_strategy(strategy, allowed):
    if strategy == QUEUE_JOB and strategy not in allowed:
        raise WorkloadError("queue_job runs through the Odoo job queue, not in this process")
    if strategy not in allowed:
        raise WorkloadError(f"unknown strategy {strategy!r}, expected one of {', '.join(allowed)}")


def resolve_pool_size(strategy, tasks, pool_size=None, cores=None):
    """The pool size a run uses: ``pool_size`` if given, else the default.

    ``sequential`` always uses 1; ``threads`` and ``asyncio`` default to one
    worker per task, ``processes`` to one per task. A process pool never has
    more workers than the usable cores, whatever ``pool_size``.
    ``queue_job`` has no pool (its channel capacity plays that part): 1.

    >>> resolve_pool_size("processes", 8, pool_size=64, cores=2)
    2
    >>> resolve_pool_size("threads", 8, pool_size=64, cores=2)
    64
    """
    if strategy in (SEQUENTIAL, QUEUE_JOB):
        return 1
    size = tasks if pool_size is None else _POOL_SIZE.clean(pool_size)
    if strategy == PROCESSES:
        return min(size, cores or usable_cores())
    return size


def _cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _outcome(function, *args):
    """``function(*args)``, or the exception it raised: a failed task is a
    measure, not a crash."""
    try:
        return function(*args)
    # Any exception: whatever the task raised is its outcome.
    except Exception as error:
        return error


#: The outcome of a task that the deadline cancelled.
CANCELLED = "cancelled by the deadline"


def _outcomes(futures, watch, stop=None):
    """The outcomes of ``futures``, waiting no later than the run's deadline.

    Past it, the outcome of the futures not done is :data:`CANCELLED`: they
    are cancelled, or ``stop()`` stops what runs them.
    """
    _done, pending = wait_futures(futures, timeout=watch.remaining())
    for future in pending if stop is None else ():
        future.cancel()
    if pending and stop is not None:
        stop()
    return [CANCELLED if future in pending else _outcome(future.result) for future in futures]


class _Stopwatch:
    """The run's clock: created at the run request, started when the first
    task is submitted, stopped when the last result is in; and its deadline."""

    def __init__(self, deadline=None):
        self.created = self.started = self.stopped = time.perf_counter()
        self.started_at = time.time()
        self.deadline = deadline

    def remaining(self):
        """Seconds until the deadline (at least 0), or None without one."""
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def expired(self):
        return self.deadline is not None and time.monotonic() >= self.deadline

    def start(self):
        self.started = time.perf_counter()
        self.started_at = time.time()

    def stop(self):
        self.stopped = time.perf_counter()


def _run_sequential(workload, params, tasks, _pool_size, watch):
    watch.start()
    outcomes = [CANCELLED if watch.expired() else _outcome(workloads.run_task, workload, params) for _ in range(tasks)]
    watch.stop()
    return outcomes


def _run_threads(workload, params, tasks, pool_size, watch):
    pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="async_lab_thread")
    try:
        watch.start()
        futures = [pool.submit(workloads.run_task, workload, params) for _ in range(tasks)]
        outcomes = _outcomes(futures, watch)
        watch.stop()
    finally:
        # Past the deadline, the threads still running are not waited for.
        pool.shutdown(wait=not watch.expired(), cancel_futures=True)
    return outcomes


def _wait_until_ready(ready, pings, workers, watch):
    """Wait until ``workers`` children released ``ready``, or the pool broke,
    or the run's deadline passed."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    if watch.deadline is not None:
        deadline = min(deadline, watch.deadline)
    started = 0
    while started < workers and time.monotonic() < deadline:
        if ready.acquire(timeout=0.05):
            started += 1
        elif any(ping.done() and ping.exception() for ping in pings):
            return


def _submit(pool, workload, params):
    """Submit one task; if the pool broke (a child died), fail the task instead."""
    try:
        return pool.submit(workloads.run_task, workload, params)
    except BrokenProcessPool as error:
        future = Future()
        future.set_exception(error)
        return future


def _run_processes(workload, params, tasks, pool_size, watch):
    context = multiprocessing.get_context("spawn")
    ready = context.Semaphore(0)
    bootstrap = _CHILD_BOOTSTRAP.format(
        modules=[(module.__name__, module.__file__) for module in (child, workloads)],
        child=child.__name__,
        workloads=workloads.__name__,
    )
    initargs = (bootstrap, {"ready": ready, "parent": os.getpid()})
    with ProcessPoolExecutor(max_workers=pool_size, mp_context=context, initializer=exec, initargs=initargs) as pool:
        # The pool spawns a worker per submit while none is idle: one no-op
        # per worker starts them all.
        pings = [pool.submit(os.getpid) for _ in range(pool_size)]
        _wait_until_ready(ready, pings, pool_size, watch)
        watch.start()
        futures = [_submit(pool, workload, params) for _ in range(tasks)]
        outcomes = _outcomes(futures, watch, stop=lambda: _terminate(pool))
        watch.stop()
    return outcomes


def _terminate(pool):
    """Stop a process pool at once: terminate its children. The pool then
    breaks: its futures fail, and leaving the ``with`` block reaps them."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):  # Python 3.14: terminate_workers()
        process.terminate()


async def _gather(workload, params, tasks, pool_size, watch):
    # asyncio.to_thread uses the loop's default executor: size it to the pool.
    # asyncio.run shuts it down at the end.
    executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="async_lab_asyncio")
    asyncio.get_running_loop().set_default_executor(executor)
    semaphore = asyncio.Semaphore(pool_size)

    async def one_task():
        async with semaphore:
            return await workloads.run_task_async(workload, params)

    watch.start()
    futures = [asyncio.ensure_future(one_task()) for _ in range(tasks)]
    _done, pending = await asyncio.wait(futures, timeout=watch.remaining())
    for future in pending:
        future.cancel()
    await asyncio.gather(*futures, return_exceptions=True)
    watch.stop()
    # Past the deadline, asyncio.run waits only for the threads still running
    # (each ends its own task), not for the queued ones.
    executor.shutdown(wait=False, cancel_futures=True)
    return [CANCELLED if future in pending else _outcome(future.result) for future in futures]


def _run_asyncio(workload, params, tasks, pool_size, watch):
    return asyncio.run(_gather(workload, params, tasks, pool_size, watch))


_RUNNERS = {
    SEQUENTIAL: _run_sequential,
    THREADS: _run_threads,
    PROCESSES: _run_processes,
    ASYNCIO: _run_asyncio,
}


def run_strategy(strategy, workload, params, tasks, pool_size=None, deadline=None):
    """Run ``tasks`` tasks of ``workload`` with ``strategy``; return a :class:`RunResult`.

    ``params`` are validated (:func:`.workloads.validate`); ``tasks`` and
    ``pool_size`` are at most :data:`MAX_TASKS` and :data:`MAX_POOL_SIZE`.
    Failed tasks are counted, not raised; so are the tasks cancelled at the
    ``deadline``, a ``time.monotonic()`` instant (see the module's docstring).
    """
    _check_strategy(strategy, LOCAL_STRATEGIES)
    params = workloads.validate(workload, params)
    tasks = _TASKS.clean(tasks)
    pool_size = resolve_pool_size(strategy, tasks, pool_size)
    cpu_before = _cpu_seconds()
    watch = _Stopwatch(deadline)
    outcomes = _RUNNERS[strategy](workload, params, tasks, pool_size, watch)
    result = RunResult.from_outcomes(
        strategy,
        workload,
        pool_size,
        outcomes,
        started_at=watch.started_at,
        wall_seconds=watch.stopped - watch.started,
        cpu_seconds=_cpu_seconds() - cpu_before,
        startup_seconds=watch.started - watch.created,
    )
    _logger.info(
        "%s: %d × %s on %d workers in %.3f s after %.3f s of start-up, %d errors, %d cancelled",
        strategy,
        tasks,
        workload,
        pool_size,
        result.wall_seconds,
        result.startup_seconds,
        result.errors,
        result.cancelled,
    )
    return result


def score(
    result,
    baseline_seconds,
    cores,
    capacity=None,
    overhead_seconds=0.0,
    baseline_cpu_seconds=0.0,
    wait_seconds=0.0,
    server_slots=None,
):
    """``result`` as a dict, with its speedup against ``baseline_seconds``.

    Adds ``speedup`` (baseline wall time / this wall time), ``ideal`` (see
    :func:`.theory.ideal_speedup`; ``capacity`` is queue_job's channel
    capacity), ``efficiency`` (speedup / ideal), ``expected`` (see
    :func:`.theory.expected`), ``serial_seconds``, ``overhead_seconds`` and a
    one-line ``verdict``.

    ``wait_seconds`` is how long a task waits (see
    :meth:`.workloads.WorkloadSpec.wait_seconds`). The baseline's CPU time
    per task (``baseline_cpu_seconds`` / tasks) takes turns under the GIL
    when the strategy shares one (:func:`.theory.shares_one_gil`).
    ``overhead_seconds`` is a fixed cost measured apart (queue_job's no-op
    fan-out); ``server_slots`` how many of the tasks' calls the called server
    answers at once.
    """
    kind = workloads.WORKLOADS[result.workload].kind
    speedup = baseline_seconds / result.wall_seconds if result.wall_seconds > 0 else 0.0
    ideal = theory.ideal_speedup(result.strategy, kind, result.tasks, cores, result.pool_size, capacity)
    serial = 0.0
    if theory.shares_one_gil(result.strategy, kind) and result.tasks:
        serial = max(0.0, baseline_cpu_seconds) / result.tasks
    expected, because, limit = theory.expected(
        ideal,
        result.tasks,
        baseline_seconds,
        cores,
        wait_seconds=wait_seconds,
        serial_seconds=serial,
        overhead_seconds=overhead_seconds,
        server_slots=server_slots,
    )
    cpu_share = None
    if kind in (workloads.KIND_CPU_GIL, workloads.KIND_CPU_NOGIL) and baseline_seconds > 0:
        cpu_share = baseline_cpu_seconds / baseline_seconds
    row = result.as_dict()
    row.update(
        kind=kind,
        speedup=round(speedup, 3),
        ideal=ideal,
        efficiency=round(speedup / ideal, 3),
        expected=expected,
        serial_seconds=round(serial, 4),
        overhead_seconds=round(overhead_seconds, 3),
        verdict=theory.verdict(
            result.strategy,
            kind,
            speedup,
            ideal,
            cores,
            expected_speedup=expected,
            because=because,
            limit=limit,
            baseline_cpu_share=cpu_share,
        ),
    )
    return row


def warm_up(workload, params, tasks):
    """Run ``tasks`` of the smallest tasks of ``workload`` at once, untimed.

    What the tasks share warms up before the first timed run, so that the
    strategy that happens to come first does not pay for it alone: above
    all the server's HTTP workers, whose first request on a database is
    slow (io_http calls them ``tasks`` at a time). Every
    parameter is at its minimum (1 ms, one loop, 1 MiB). Control workloads
    (which fail on purpose) are not warmed up; a failure here is only
    logged, since the timed runs report it anyway.
    """
    spec = workloads.WORKLOADS[workload]
    if spec.kind == workloads.KIND_CONTROL:
        return
    small = dict(params, **{param.name: param.minimum for param in spec.params})
    try:
        with ThreadPoolExecutor(max_workers=max(1, tasks), thread_name_prefix="async_lab_warm_up") as pool:
            list(pool.map(lambda _index: workloads.run_task(workload, small), range(tasks)))
    except Exception:
        _logger.info("warm-up of %s failed; the timed runs will show why", workload, exc_info=True)


def compare(workload, params, tasks, strategies, pool_size=None, cores=None, server_slots=None, deadline=None):
    """Run ``workload`` with each strategy and score it against ``sequential``.

    ``sequential`` is always measured, as the baseline, and is the first
    row: twice, first and last, and the faster run counts (one run timed
    while the CPU is busy elsewhere, or its cache cold, would make every
    other strategy look faster than it can be). The other strategies follow
    in the order given, after an untimed :func:`warm_up`. ``cores``
    defaults to :func:`usable_cores`; ``server_slots`` is how many calls the
    server that the tasks call answers at once (see :func:`score`). Return
    one :func:`score` dict per run. At the ``deadline`` (a
    ``time.monotonic()`` instant) the run in progress is cut (its row is
    ``timed_out``) and the strategies after it are not run.
    """
    for strategy in strategies:
        _check_strategy(strategy, LOCAL_STRATEGIES)
    cores = cores or usable_cores()
    warm_up(workload, params, tasks)
    others = [strategy for strategy in dict.fromkeys(strategies) if strategy != SEQUENTIAL]
    wait = workloads.WORKLOADS[workload].wait_seconds(workloads.validate(workload, params))
    first = run_strategy(SEQUENTIAL, workload, params, tasks, pool_size, deadline=deadline)
    results, timed_out = [], first.timed_out
    for strategy in others:
        if timed_out:
            break
        results.append(run_strategy(strategy, workload, params, tasks, pool_size, deadline=deadline))
        timed_out = results[-1].timed_out
    baseline = first
    if not timed_out:
        last = run_strategy(SEQUENTIAL, workload, params, tasks, pool_size, deadline=deadline)
        if not last.timed_out and last.wall_seconds < first.wall_seconds:
            baseline = last
    return [
        score(
            result,
            baseline.wall_seconds,
            cores,
            baseline_cpu_seconds=baseline.cpu_seconds,
            wait_seconds=wait,
            server_slots=server_slots,
        )
        for result in [baseline, *results]
    ]


def predict_seconds(
    workload, params, tasks, strategies, calibration, cores, pool_size=None, capacity=None, baseline=True
):
    """Predicted duration of :func:`compare` (plus ``queue_job`` if listed).

    The sequential baseline takes twice ``tasks`` × the per-task estimate; each
    other strategy runs the tasks in waves of its ideal parallelism, and
    ``processes`` adds :data:`PROCESS_START_SECONDS` per wave of workers
    spawned on the cores. ``calibration`` comes from
    :func:`.workloads.calibrate`. With ``baseline=False`` (one strategy run
    alone, as by :func:`run_strategy`) there is no baseline, and a listed
    ``sequential`` counts once.

    >>> predict_seconds("io_sleep", {"ms": 100}, 8, ["threads", "asyncio"], {}, cores=2)
    1.8
    >>> predict_seconds("io_sleep", {"ms": 100}, 8, ["threads"], {}, cores=2, baseline=False)
    0.1
    """
    params = workloads.validate(workload, params)
    tasks = _TASKS.clean(tasks)
    for strategy in strategies:
        _check_strategy(strategy, STRATEGIES)
    spec = workloads.WORKLOADS[workload]
    per_task = spec.estimate_seconds(params, calibration)
    sequential = tasks * per_task
    total = 2 * sequential if baseline else 0.0  # compare measures the baseline twice
    for strategy in dict.fromkeys(strategies):
        if strategy == SEQUENTIAL:
            total += 0.0 if baseline else sequential
            continue
        size = resolve_pool_size(strategy, tasks, pool_size, cores)
        ideal = theory.ideal_speedup(strategy, spec.kind, tasks, cores, size, capacity)
        total += math.ceil(tasks / ideal) * per_task
        if strategy == PROCESSES:
            total += math.ceil(size / cores) * PROCESS_START_SECONDS
    return round(total, 6)
