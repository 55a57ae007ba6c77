# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What background jobs cost interactive users: a steady probe and its figures.

The probe sends small requests at a fixed rate (an open loop: request i is
due at ``start + i / rate``, whatever the previous ones took) and measures
each from the moment it was due, not from the moment it could be sent, so a
stalled server shows as latency instead of as fewer requests (no
coordinated omission). ``send`` does one request and raises on failure;
clock and sleep are passed in.
"""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

#: Requests in flight at once, at most: beyond that the probe itself would be the load.
MAX_IN_FLIGHT = 8
#: Highest probe rate, requests per second.
MAX_RATE = 20


def percentile(values, q):
    """The ``q`` percentile (0..1) of ``values`` by the nearest rank, or None.

    >>> percentile([0.1, 0.2, 0.3, 0.4], 0.5), percentile([0.1, 0.2, 0.3, 0.4], 0.95), percentile([], 0.5)
    (0.2, 0.4, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(latencies, errors=0):
    """Counts and percentiles of one probe run, in seconds.

    >>> summary([0.010, 0.020, 0.030, 0.200], errors=1)
    {'requests': 5, 'errors': 1, 'p50': 0.02, 'p95': 0.2, 'max': 0.2}
    """
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "p50": round(percentile(latencies, 0.5), 6) if latencies else None,
        "p95": round(percentile(latencies, 0.95), 6) if latencies else None,
        "max": round(max(latencies), 6) if latencies else None,
    }


def probe(send, *, rate, done, max_seconds, clock=time.monotonic, sleep=time.sleep):
    """Send ``send()`` ``rate`` times a second until ``done()`` or ``max_seconds``; return a summary.

    >>> ticks = iter(range(1000))
    >>> fake_clock = lambda: next(ticks) * 0.05
    >>> result = probe(lambda: None, rate=10, done=lambda: False, max_seconds=1, clock=fake_clock, sleep=lambda s: None)
    >>> result["requests"] > 0, result["errors"]
    (True, 0)
    """
    latencies, errors = [], [0]
    lock = threading.Lock()

    def one(due):
        try:
            send()
        except Exception:
            with lock:
                errors[0] += 1
            return
        elapsed = clock() - due
        with lock:
            latencies.append(max(0.0, elapsed))

    start = clock()
    with ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="async_lab probe") as pool:
        index = 0
        while True:
            due = start + index / rate
            now = clock()
            if now - start >= max_seconds or done():
                break
            if due > now:
                sleep(due - now)
            pool.submit(one, due)
            index += 1
    return summary(latencies, errors[0])


def impact(idle, burst, workers_held):
    """The probe at rest against the probe during a burst, and the share of HTTP workers the jobs held.

    >>> impact({"p50": 0.02, "p95": 0.05}, {"p50": 0.03, "p95": 1.5}, 0.66)["p95_ratio"]
    30.0
    """
    ratio = round(burst["p95"] / idle["p95"], 2) if idle.get("p95") and burst.get("p95") is not None else None
    return {"idle": idle, "burst": burst, "p95_ratio": ratio, "workers_held": workers_held}
