# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What background jobs cost interactive users: a steady probe and its figures.

The probe sends small requests at a fixed rate (an open loop: request i is
due at ``start + i / rate``, whatever the previous ones took) and measures
each from the moment it was due, not from the moment it could be sent, so a
stalled server shows as latency instead of as fewer requests (no
coordinated omission). ``send`` does one request and raises on failure,
``TimeoutError`` when the server did not answer in time; clock and sleep are
passed in.
"""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor

#: Requests in flight at once, at most: beyond that the probe itself would be the load.
MAX_IN_FLIGHT = 8
#: Highest probe rate, requests per second.
MAX_RATE = 20
#: Addresses that mean "every interface": the probe then calls the loopback.
ANY_ADDRESSES = ("", "0.0.0.0", "::")


def percentile(values, q):
    """The ``q`` percentile (0..1) of ``values`` by the nearest rank, or None.

    >>> percentile([0.1, 0.2, 0.3, 0.4], 0.5), percentile([0.1, 0.2, 0.3, 0.4], 0.95), percentile([], 0.5)
    (0.2, 0.4, None)
    """
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(latencies, errors=0, timeouts=0):
    """Counts and percentiles of one probe run, in seconds.

    ``latencies`` include the requests that timed out (``timeouts`` of them,
    each counted as at least the timeout); ``errors`` are the requests that
    failed otherwise, with no latency.

    >>> summary([0.010, 0.020, 0.030, 0.200], errors=1, timeouts=1)
    {'requests': 5, 'errors': 1, 'timeouts': 1, 'p50': 0.02, 'p95': 0.2, 'max': 0.2}
    """
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "timeouts": timeouts,
        "p50": round(percentile(latencies, 0.5), 6) if latencies else None,
        "p95": round(percentile(latencies, 0.95), 6) if latencies else None,
        "max": round(max(latencies), 6) if latencies else None,
    }


def probe(send, *, rate, done, max_seconds, timeout=0.0, clock=time.monotonic, sleep=time.sleep):
    """Send ``send()`` ``rate`` times a second until ``done()`` or ``max_seconds``; return a summary.

    A request that times out (``send`` raises ``TimeoutError``) is a user
    left waiting: it counts as a latency of at least ``timeout`` seconds, in
    the percentiles, and in ``timeouts``; it is not an error.

    >>> ticks = iter(range(1000))
    >>> fake_clock = lambda: next(ticks) * 0.05
    >>> result = probe(lambda: None, rate=10, done=lambda: False, max_seconds=1, clock=fake_clock, sleep=lambda s: None)
    >>> result["requests"] > 0, result["errors"], result["timeouts"]
    (True, 0, 0)
    >>> def stalled():
    ...     raise TimeoutError("read timed out")
    >>> ticks = iter(range(1000))
    >>> result = probe(stalled, rate=10, done=lambda: False, max_seconds=1, timeout=30, clock=fake_clock,
    ...                sleep=lambda s: None)
    >>> result["errors"], result["timeouts"] == result["requests"], result["p95"]
    (0, True, 30.0)
    """
    latencies, counts = [], {"errors": 0, "timeouts": 0}
    lock = threading.Lock()

    def one(due):
        try:
            send()
        except TimeoutError:
            elapsed = max(clock() - due, float(timeout))
            with lock:
                counts["timeouts"] += 1
                latencies.append(elapsed)
            return
        except Exception:
            with lock:
                counts["errors"] += 1
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
    return summary(latencies, **counts)


def every(check, interval, clock=time.monotonic):
    """A ``done`` for :func:`probe`: ``check()`` at most once every ``interval`` seconds, True from its first True on.

    >>> now, calls = [0.0], []
    >>> def check():
    ...     calls.append(now[0])
    ...     return now[0] >= 2
    >>> stopped, answers = every(check, 1.0, clock=lambda: now[0]), []
    >>> for now[0] in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
    ...     answers.append(stopped())
    >>> answers, calls
    ([False, False, False, False, True, True, True], [0.0, 1.0, 2.0])
    """
    state = {"next": float("-inf"), "stopped": False}

    def stopped():
        if not state["stopped"] and clock() >= state["next"]:
            state["next"] = clock() + interval
            state["stopped"] = bool(check())
        return state["stopped"]

    return stopped


def base_url(interface, port):
    """The URL the probe calls this server at: its ``http_interface``, or the loopback when it listens on all.

    >>> base_url("", 8069), base_url("0.0.0.0", 8069), base_url("::", 8069), base_url(None, 8069)
    ('http://127.0.0.1:8069', 'http://127.0.0.1:8069', 'http://127.0.0.1:8069', 'http://127.0.0.1:8069')
    >>> base_url("10.1.2.3", 8069), base_url("::1", 8069), base_url("odoo.lan", 80)
    ('http://10.1.2.3:8069', 'http://[::1]:8069', 'http://odoo.lan:80')
    """
    host = (interface or "").strip()
    if host in ANY_ADDRESSES:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):  # an IPv6 address
        host = "[%s]" % host
    return "http://%s:%s" % (host, port)


def impact(idle, burst, workers_held):
    """The probe at rest against the probe during a burst, and the share of HTTP workers the jobs held.

    >>> impact({"p50": 0.02, "p95": 0.05}, {"p50": 0.03, "p95": 1.5}, 0.66)["p95_ratio"]
    30.0
    """
    ratio = round(burst["p95"] / idle["p95"], 2) if idle.get("p95") and burst.get("p95") is not None else None
    return {"idle": idle, "burst": burst, "p95_ratio": ratio, "workers_held": workers_held}
