# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The workloads of the concurrency lab: small units of work with bounded sizes.

Each workload is a plain top-level function, so that a spawn-context
``ProcessPoolExecutor`` can pickle it by reference, and so that a queue_job
job can call it. :data:`WORKLOADS` describes them: parameters and their
bounds, the kind of work and a cost model. The kinds of work are:

- ``io``: the task waits (sleep, HTTP, PostgreSQL); the GIL is released
  while it is blocked.
- ``cpu_gil``: pure-Python bytecode, which holds the GIL.
- ``cpu_nogil``: C code that releases the GIL (hashlib on large buffers).
- ``control``: failures and retries; these take no time, so speed is moot.

This module imports nothing from the addon but :mod:`.tokens` (itself free
of imports from the addon): child processes load it alone, from its file
(see :mod:`.strategies`), and it loads ``tokens`` from its file there too.

Input from users goes through :func:`validate`, which raises
:class:`WorkloadError` with a message that names the faulty parameter:

>>> validate("io_sleep", {"ms": "250"})
{'ms': 250}
>>> validate("io_sleep", {"ms": "abc"})
Traceback (most recent call last):
...
odoo.addons.async_lab.lib.workloads.WorkloadError: ms must be an integer between 1 and 10000, got 'abc'

:func:`run_task` runs one task and tells where and when it ran:

>>> sorted(run_task("cpu_python", {"n": 10}))
['end', 'pid', 'result', 'start', 'thread', 'thread_name']
"""

import asyncio
import hashlib
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2
import requests

try:
    from . import tokens
except ImportError:  # a spawned child, which loaded this module from its file
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        __name__.rpartition(".")[0] + ".tokens", os.path.join(os.path.dirname(__file__), "tokens.py")
    )
    tokens = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(tokens)

_logger = logging.getLogger(__name__)

KIND_IO = "io"
KIND_CPU_GIL = "cpu_gil"
KIND_CPU_NOGIL = "cpu_nogil"
KIND_CONTROL = "control"
KINDS = (KIND_IO, KIND_CPU_GIL, KIND_CPU_NOGIL, KIND_CONTROL)

MIB = 1024 * 1024
# One deterministic MiB, built once: cpu_gil_free hashes it ``mb`` times, so a
# task needs no large allocation whatever its size.
_BLOCK = bytes(range(256)) * (MIB // 256)

# io_http waits this much longer than the requested delay before giving up.
HTTP_TIMEOUT_MARGIN = 5.0

# Keys of the dict returned by calibrate(), read by the cost models.
CPU_PYTHON_RATE = "cpu_python_iter_per_s"
GIL_FREE_RATE = "gil_free_mb_per_s"


class WorkloadError(ValueError):
    """An unknown workload, strategy or parameter, or a value out of bounds.

    The message is meant for the user and names the faulty input.
    """


class TransientError(Exception):
    """A failure that succeeds when retried (queue_job: ``RetryableJobError``)."""


class WorkloadFailure(Exception):
    """A deliberate failure that no retry fixes."""


def io_sleep(ms):
    """Wait ``ms`` milliseconds in ``time.sleep``; return ``ms``.

    >>> io_sleep(1)
    1
    """
    time.sleep(ms / 1000)
    return ms


async def io_sleep_async(ms):
    """``io_sleep`` for an event loop: ``await asyncio.sleep``; return ``ms``.

    >>> asyncio.run(io_sleep_async(1))
    1
    """
    await asyncio.sleep(ms / 1000)
    return ms


def io_http(ms, url, timeout=None):
    """GET ``url`` with the query parameter ``ms``; return the HTTP status.

    ``url`` is an endpoint that answers after ``ms`` milliseconds, such as the
    addon's own ``/async_lab/io``; this function adds ``?ms=<ms>`` itself. The
    request gives up after ``timeout`` seconds (default: ``ms`` plus
    :data:`HTTP_TIMEOUT_MARGIN`) and a status other than 2xx raises
    ``requests.HTTPError``.

    A ``#key=<key>`` fragment of ``url`` is never sent: it signs this very
    call (:func:`.tokens.sign`, bound to ``ms``, valid until the timeout), and
    the token travels in the :data:`.tokens.HEADER` header, out of URLs and
    logs. Proxies set in the environment (``HTTP_PROXY``...) are ignored: the
    addon calls itself.
    """
    if timeout is None:
        timeout = ms / 1000 + HTTP_TIMEOUT_MARGIN
    url, _sep, fragment = url.partition("#")
    headers = {}
    key = urllib.parse.parse_qs(fragment).get("key")
    if key:
        ttl = min(timeout, tokens.MAX_TTL)
        headers[tokens.HEADER] = tokens.sign(key[0], "io", {"ms": ms}, now=time.time(), ttl=ttl)
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(url, params={"ms": ms}, headers=headers, timeout=timeout)
    response.raise_for_status()
    return response.status_code


def io_db(ms, dsn):
    """Run ``SELECT pg_sleep`` for ``ms`` milliseconds in PostgreSQL; return ``ms``.

    ``dsn`` is a libpq connection string or a dict of ``psycopg2.connect``
    keywords. The task opens its own connection and closes it afterwards.
    """
    connection = psycopg2.connect(**dsn) if isinstance(dsn, dict) else psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(%s)", (ms / 1000,))
    finally:
        connection.close()
    return ms


def cpu_python(n):
    """Run ``n`` iterations of a pure-Python loop, which holds the GIL.

    >>> cpu_python(10)
    19
    """
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def cpu_gil_free(mb):
    """Hash ``mb`` MiB with SHA-256; return the hex digest.

    hashlib releases the GIL while it hashes a buffer larger than 2047 bytes,
    so threads running this use several cores.

    >>> cpu_gil_free(1)[:16]
    'fbbab289f7f94b25'
    """
    digest = hashlib.sha256()
    for _ in range(mb):
        digest.update(_BLOCK)
    return digest.hexdigest()


def flaky(k, attempt):
    """Fail with :class:`TransientError` on attempts 0 to ``k - 1``, then succeed.

    >>> flaky(2, attempt=2)
    'ok after 2 retries'
    >>> flaky(2, attempt=1)
    Traceback (most recent call last):
    ...
    odoo.addons.async_lab.lib.workloads.TransientError: attempt 1 fails on purpose, attempt 2 will succeed
    """
    if attempt < k:
        raise TransientError(f"attempt {attempt} fails on purpose, attempt {k} will succeed")
    return f"ok after {k} retries"


def noop():
    """Do nothing: what is left is the cost of the machinery that ran the task.

    >>> noop() is None
    True
    """
    return None


def fail():
    """Always raise :class:`WorkloadFailure`."""
    raise WorkloadFailure("the 'fail' workload always fails, on purpose")


@dataclass(frozen=True)
class Param:
    """An integer parameter, with its bounds and its default (None: required)."""

    name: str
    minimum: int
    maximum: int
    description: str
    default: int | None = None

    def clean(self, value):
        """Return ``value`` as an int within bounds, or raise :class:`WorkloadError` (see :func:`clean_int`).

        >>> Param("n", 1, 10, "a count").clean(" 7 ")
        7
        >>> Param("n", 1, 10, "a count").clean(11)
        Traceback (most recent call last):
        ...
        odoo.addons.async_lab.lib.workloads.WorkloadError: n must be an integer between 1 and 10, got 11
        """
        return clean_int(self.name, value, self.minimum, self.maximum)


def clean_int(name, value, minimum, maximum, *, exact=False):
    """Return ``value`` as an int between ``minimum`` and ``maximum`` (inclusive),
    or raise :class:`WorkloadError` naming it ``name``.

    The addon's one bounds check of an integer input: workload parameters,
    route arguments and form fields all go through it. Integers, integral
    floats and strings of digits (form and query input) are accepted, with
    ``exact`` only integers (the numbers of a JSON body, which has types);
    booleans never.

    >>> clean_int("n", 7.0, 1, 10), clean_int("n", "7", 1, 10)
    (7, 7)
    >>> clean_int("count", "7", 1, 10, exact=True)
    Traceback (most recent call last):
    ...
    odoo.addons.async_lab.lib.workloads.WorkloadError: count must be an integer between 1 and 10, got '7'
    >>> clean_int("count", True, 0, 10)
    Traceback (most recent call last):
    ...
    odoo.addons.async_lab.lib.workloads.WorkloadError: count must be an integer between 0 and 10, got True
    """
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif exact:
        number = None
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value)
        except ValueError:
            number = None
    if number is None or not minimum <= number <= maximum:
        raise WorkloadError(f"{name} must be an integer between {minimum} and {maximum}, got {value!r}")
    return number


def _cost_ms(params, _calibration):
    return params["ms"] / 1000


def _cost_cpu_python(params, calibration):
    return params["n"] / calibration[CPU_PYTHON_RATE]


def _cost_gil_free(params, calibration):
    return params["mb"] / calibration[GIL_FREE_RATE]


def _cost_nothing(_params, _calibration):
    return 0.0


@dataclass(frozen=True)
class WorkloadSpec:
    """How to run, bound and cost one workload.

    ``settings`` are values the caller supplies rather than the user (the
    URL of the addon's slow endpoint, the database DSN); ``coroutine`` is a
    native awaitable variant that the asyncio strategy prefers to a thread.
    """

    name: str
    function: Callable
    kind: str
    summary: str
    params: tuple = ()
    settings: tuple = ()
    cost: Callable = _cost_nothing
    coroutine: Callable | None = None

    def estimate_seconds(self, params, calibration):
        """Predicted duration of one task with cleaned ``params``.

        ``calibration`` is the dict returned by :func:`calibrate`.

        >>> WORKLOADS["io_sleep"].estimate_seconds({"ms": 250}, {})
        0.25
        >>> WORKLOADS["cpu_python"].estimate_seconds({"n": 3000000}, {CPU_PYTHON_RATE: 2e6})
        1.5
        """
        return self.cost(params, calibration)

    def wait_seconds(self, params):
        """How long one task with cleaned ``params`` waits: its whole cost for
        I/O-bound work, nothing for the rest (the lab's theory counts the
        remainder of a task as CPU work).

        >>> WORKLOADS["io_http"].wait_seconds({"ms": 200, "url": "http://x"})
        0.2
        >>> WORKLOADS["cpu_python"].wait_seconds({"n": 10})
        0.0
        """
        return self.cost(params, {}) if self.kind == KIND_IO else 0.0


_MS = Param("ms", 1, 10000, "how long the task waits, in milliseconds", 100)

WORKLOADS = {
    spec.name: spec
    for spec in (
        WorkloadSpec(
            "io_sleep",
            io_sleep,
            KIND_IO,
            "time.sleep (asyncio.sleep under asyncio)",
            params=(_MS,),
            cost=_cost_ms,
            coroutine=io_sleep_async,
        ),
        WorkloadSpec(
            "io_http",
            io_http,
            KIND_IO,
            "an HTTP GET to an endpoint that answers after ms",
            params=(_MS,),
            settings=("url",),
            cost=_cost_ms,
        ),
        WorkloadSpec(
            "io_db",
            io_db,
            KIND_IO,
            "SELECT pg_sleep on its own PostgreSQL connection",
            params=(_MS,),
            settings=("dsn",),
            cost=_cost_ms,
        ),
        WorkloadSpec(
            "cpu_python",
            cpu_python,
            KIND_CPU_GIL,
            "a pure-Python loop, which holds the GIL",
            params=(Param("n", 1, 50_000_000, "loop iterations", 5_000_000),),
            cost=_cost_cpu_python,
        ),
        WorkloadSpec(
            "cpu_gil_free",
            cpu_gil_free,
            KIND_CPU_NOGIL,
            "SHA-256 of a buffer; hashlib releases the GIL",
            params=(Param("mb", 1, 4096, "MiB to hash", 256),),
            cost=_cost_gil_free,
        ),
        WorkloadSpec(
            "flaky",
            flaky,
            KIND_CONTROL,
            "fails with a retryable error until attempt k",
            params=(
                Param("k", 0, 10, "attempts that fail before one succeeds", 2),
                Param("attempt", 0, 100, "the attempt number, counted from 0", 0),
            ),
        ),
        WorkloadSpec("fail", fail, KIND_CONTROL, "always fails"),
        WorkloadSpec("noop", noop, KIND_CONTROL, "does nothing: measures the machinery's own cost"),
    )
}


def _clean_setting(workload, name, value):
    if name == "url":
        valid = isinstance(value, str) and value.startswith(("http://", "https://"))
        expected = "an http(s) address"
    else:
        valid = isinstance(value, (str, dict)) and bool(value)
        expected = "a libpq connection string or a dict of psycopg2.connect keywords"
    if not valid:
        raise WorkloadError(f"{workload} needs {name}, {expected}, got {value!r}")
    return value


def validate(name, params):
    """Return ``params`` cleaned for workload ``name``: ints, defaults filled.

    Raise :class:`WorkloadError` for an unknown workload, an unknown
    parameter, a value out of bounds or a missing setting.

    >>> validate("flaky", {"k": 3})
    {'k': 3, 'attempt': 0}
    >>> validate("io_sleep", {"n": 5})
    Traceback (most recent call last):
    ...
    odoo.addons.async_lab.lib.workloads.WorkloadError: io_sleep has no parameter n; it takes: ms
    """
    spec = WORKLOADS.get(name)
    if spec is None:
        raise WorkloadError(f"unknown workload {name!r}, expected one of {', '.join(WORKLOADS)}")
    params = dict(params or {})
    accepted = [param.name for param in spec.params] + list(spec.settings)
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise WorkloadError(
            f"{name} has no parameter {', '.join(unknown)}; it takes: {', '.join(accepted) or 'nothing'}"
        )
    cleaned = {param.name: param.clean(params.get(param.name, param.default)) for param in spec.params}
    for setting in spec.settings:
        cleaned[setting] = _clean_setting(name, setting, params.get(setting))
    return cleaned


def _span(start, end, result):
    return {
        "pid": os.getpid(),
        "thread": threading.get_native_id(),
        "thread_name": threading.current_thread().name,
        "start": start,
        "end": end,
        "result": result,
    }


def run_task(name, params):
    """Run one task of workload ``name``; return where and when it ran.

    The dict holds ``pid``, ``thread`` (native thread id), ``thread_name``,
    ``start`` and ``end`` (``time.time()``) and the workload's ``result``.
    ``params`` are validated again here, since this is the entry point of
    child processes and jobs. The workload's exceptions propagate.
    """
    params = validate(name, params)
    start = time.time()
    result = WORKLOADS[name].function(**params)
    return _span(start, time.time(), result)


async def run_task_async(name, params):
    """:func:`run_task` for an event loop.

    A workload with a native coroutine runs it in the loop's thread; the
    others run :func:`run_task` in a worker thread (``asyncio.to_thread``).
    """
    params = validate(name, params)
    coroutine = WORKLOADS[name].coroutine
    if coroutine is None:
        return await asyncio.to_thread(run_task, name, params)
    start = time.time()
    result = await coroutine(**params)
    return _span(start, time.time(), result)


def _rate(function, size, budget):
    """Units of work per second of ``function`` (``size`` units per call)."""
    calls = 0
    started = time.perf_counter()
    elapsed = 0.0
    while elapsed < budget:
        function(size)
        calls += 1
        elapsed = time.perf_counter() - started
    return calls * size / elapsed


def calibrate(budget=0.05):
    """Measure this machine's speed on the CPU workloads, in about ``budget`` s.

    Return ``{CPU_PYTHON_RATE: iterations/s, GIL_FREE_RATE: MiB/s}``, the
    input of :meth:`WorkloadSpec.estimate_seconds`.
    """
    calibration = {
        CPU_PYTHON_RATE: _rate(cpu_python, 20_000, budget / 2),
        GIL_FREE_RATE: _rate(cpu_gil_free, 1, budget / 2),
    }
    _logger.debug("calibration: %s", calibration)
    return calibration
