# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The Prometheus exposition of ``GET /async_lab/metrics``, from a plain snapshot.

The snapshot is read from the database (``async_lab.metrics``), the one
source that is the same whichever prefork worker answers a scrape and
whichever node. This module only turns it into metric families, through a
collector of its own registered in a registry of its own: nothing is kept in
the process between two scrapes.

Stage latencies are **histograms** with the fixed buckets :data:`BUCKETS`,
not summaries. Their counts are cumulative and monotonic (a trigger on
``queue_job`` adds each job once, when it ends: models/async_lab_metrics.py),
so Prometheus can aggregate them across channels and nodes and take a
quantile over any range with ``histogram_quantile(0.95, rate(...[5m]))``. A
summary's quantiles would be those of a window the server chose, which can
be neither added nor re-windowed (the dashboard and ``/async_lab/stats``
already give exact quantiles of a window).

>>> snapshot = {
...     "channels": [{
...         "channel": "root.async_lab.io", "done_total": 3, "failed_total": 1, "capacity": 4,
...         "states": {"pending": 2, "started": 1},
...         "stages": {"started_done": {"buckets": [0] * 7 + [3] + [0] * 11, "sum": 2.5}},
...     }],
...     "processes": [{"host": "h", "pid": 12, "role": "http", "up": True, "rss_bytes": 1048576,
...                    "cpu_seconds": 1.5, "requests": 7, "jobs": 3, "crons": 0, "start_time": 1700000000.0}],
...     "respawns": [{"host": "h", "role": "http", "reason": "killed", "total": 2}],
...     "runner": {"up": True, "host": "h", "pid": 13},
...     "findings": [{"code": "root_capacity_one", "severity": "warning", "count": 1}],
... }
>>> text = exposition(snapshot).decode()
>>> print("\\n".join(line for line in text.splitlines() if "io" in line and "stage" not in line))
async_lab_jobs_done_total{channel="root.async_lab.io"} 3.0
async_lab_jobs_failed_total{channel="root.async_lab.io"} 1.0
async_lab_jobs{channel="root.async_lab.io",state="pending"} 2.0
async_lab_jobs{channel="root.async_lab.io",state="started"} 1.0
async_lab_channel_capacity{channel="root.async_lab.io"} 4.0
>>> [line for line in text.splitlines() if 'le="1.0"' in line or "stage_seconds_count" in line]
['async_lab_job_stage_seconds_bucket{channel="root.async_lab.io",le="1.0",stage="started_done"} 3.0', \
'async_lab_job_stage_seconds_count{channel="root.async_lab.io",stage="started_done"} 3.0']
>>> [line for line in text.splitlines() if line.startswith(("async_lab_process_up", "async_lab_job_runner"))]
['async_lab_process_up{host="h",pid="12",role="http"} 1.0', \
'async_lab_job_runner_up 1.0', 'async_lab_job_runner_info{host="h",pid="13"} 1.0']
"""

import itertools

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest

#: Upper bounds, in seconds, of the stage histograms' buckets (``le``), then
#: ``+Inf``. From 5 ms (a dispatch) to an hour (a long job). Changing them
#: changes what the counters mean: it needs a migration that resets the
#: counters (models/async_lab_metrics.py).
BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)
#: The stages of a done job, as ``/async_lab/stats`` names them.
STAGES = ("created_enqueued", "enqueued_started", "started_done")
#: The exposition format served: Prometheus's text format 0.0.4, which
#: every Prometheus 2.x reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def bucket_index(seconds):
    """The 1-based index of the bucket of ``seconds``: the first bound ≥ it (``le``), ``+Inf`` last.

    The SQL function ``async_lab_stage_bucket`` is the same
    (models/async_lab_metrics.py).

    >>> bucket_index(0.0), bucket_index(0.005), bucket_index(0.006), bucket_index(3600), bucket_index(3601)
    (1, 1, 2, 18, 19)
    """
    return sum(1 for bound in BUCKETS if bound < seconds) + 1


def bucket_sql(expression):
    """SQL of :func:`bucket_index` of ``expression`` (seconds, float8): NULL for NULL.

    ``width_bucket`` on the negated bounds (C, a binary search) counts the
    bounds ≥ the value; ``le`` wants those below it. The counters'
    function ``async_lab_stage_bucket`` and the rollups' histograms both use
    it, so that their buckets cannot differ.

    >>> bucket_sql("x")[:50]
    '(19 - width_bucket(-(x), ARRAY[-3600.0, -1800.0, -'
    """
    negated = ", ".join(repr(-bound) for bound in reversed(BUCKETS))
    return "(%d - width_bucket(-(%s), ARRAY[%s]::float8[]))" % (len(BUCKETS) + 1, expression, negated)


def histogram_quantile(fraction, counts):
    """``(value, lower, upper)``: the ``fraction`` quantile of a histogram of per-bucket ``counts``.

    As Prometheus's ``histogram_quantile``: the rank's bucket, then linear
    interpolation inside it (the first bucket starts at 0). The true
    quantile lies in ``[lower, upper]``, the bucket's bounds: that is its
    error bound. In the ``+Inf`` bucket, the value is the last bound and
    ``upper`` is None. None for an empty histogram.

    >>> histogram_quantile(0.5, [0] * 7 + [4] + [0] * 11)  # four values in (0.5, 1]
    (0.75, 0.5, 1.0)
    >>> histogram_quantile(0.95, [10] + [0] * 17 + [10])
    (3600.0, 3600.0, None)
    >>> histogram_quantile(0.5, [0] * 19) is None
    True
    >>> histogram_quantile(0.0, [0, 3] + [0] * 17)
    (0.005, 0.005, 0.01)
    """
    if len(counts) != len(BUCKETS) + 1:
        raise ValueError("%d bucket counts for %d buckets" % (len(counts), len(BUCKETS) + 1))
    total = sum(counts)
    if not total:
        return None
    rank = fraction * total
    upto = list(itertools.accumulate(counts))
    index = next(i for i, count in enumerate(counts) if count and upto[i] >= rank)
    count, below = counts[index], upto[index] - counts[index]
    if index == len(BUCKETS):
        return (float(BUCKETS[-1]), float(BUCKETS[-1]), None)
    lower = float(BUCKETS[index - 1]) if index else 0.0
    upper = float(BUCKETS[index])
    return (lower + (upper - lower) * max(rank - below, 0) / count, lower, upper)


def runner_host(pid, backend_start, runners):
    """``(host, pid)`` of the job runner that holds queue_job's lock, or ``(None, pid)``.

    ``pid`` comes from the lock holder's ``application_name`` (Odoo's
    ``odoo-<pid>``; None if ODOO_PGAPPNAME renamed it), ``backend_start``
    is when its connection opened (epoch seconds); ``runners`` are the live
    runner rows of the registry, ``{"host", "pid", "started_at"}``. Two hosts
    may each have a runner with that PID (containers): the one started
    before the connection opened is the holder; if both were, no host is
    named rather than the wrong one. Without a PID, a lone runner is it.
    (A host is listed once: two rows of one host with that PID are one
    runner and its restart.)

    >>> runners = [{"host": "a", "pid": 7, "started_at": 100.0}, {"host": "b", "pid": 7, "started_at": 500.0}]
    >>> runner_host(7, 200.0, runners), runner_host(7, 600.0, runners), runner_host(8, 600.0, runners)
    (('a', 7), (None, 7), (None, 8))
    >>> runner_host(None, 600.0, runners[1:]), runner_host(None, 600.0, runners)
    (('b', 7), (None, None))
    """
    if pid is None:
        return (runners[0]["host"], runners[0]["pid"]) if len(runners) == 1 else (None, None)
    hosts = {r["host"]: r["started_at"] for r in runners if r["pid"] == pid}
    if len(hosts) > 1 and backend_start is not None:
        # Only then: the hosts' clocks and the database's may differ a little.
        hosts = {host: started for host, started in hosts.items() if started is None or started <= backend_start}
    return (next(iter(hosts)) if len(hosts) == 1 else None), pid


def cumulative(counts):
    """``(le, cumulative count)`` pairs of a histogram whose ``counts`` are per bucket.

    >>> cumulative([1, 0, 2] + [0] * 15 + [1])[:3], cumulative([0] * 19)[-1]
    ([('0.005', 1), ('0.01', 1), ('0.025', 3)], ('+Inf', 0))
    >>> cumulative([1] * 19)[-1]
    ('+Inf', 19)
    """
    if len(counts) != len(BUCKETS) + 1:
        raise ValueError("%d bucket counts for %d buckets" % (len(counts), len(BUCKETS) + 1))
    pairs, total = [], 0
    for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
        total += count
        pairs.append((bound, total))
    return pairs


class SnapshotCollector:
    """A prometheus_client collector of one snapshot (see the module's doctest for its shape)."""

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def collect(self):
        yield from self._channels(self.snapshot.get("channels", ()))
        yield from self._processes(self.snapshot.get("processes", ()))
        respawns = CounterMetricFamily(
            "async_lab_respawns", "Processes the master replaced, by exit reason.", labels=["host", "role", "reason"]
        )
        for row in self.snapshot.get("respawns", ()):
            respawns.add_metric([row["host"], row["role"], row["reason"]], row["total"])
        yield respawns
        runner = self.snapshot.get("runner") or {}
        yield GaugeMetricFamily(
            "async_lab_job_runner_up",
            "1 when a job runner holds queue_job's lock on this database.",
            value=1 if runner.get("up") else 0,
        )
        info = GaugeMetricFamily(
            "async_lab_job_runner_info", "The job runner that holds queue_job's lock (1).", labels=["host", "pid"]
        )
        if runner.get("up") and runner.get("pid"):
            info.add_metric([runner.get("host") or "", str(runner["pid"])], 1)
        yield info
        findings = GaugeMetricFamily(
            "async_lab_advisor_findings",
            "The capacity advisor's findings, by code and severity.",
            labels=["code", "severity"],
        )
        for row in self.snapshot.get("findings", ()):
            findings.add_metric([row["code"], row["severity"]], row["count"])
        yield findings
        if self.snapshot.get("scrape_seconds") is not None:
            yield GaugeMetricFamily(
                "async_lab_scrape_duration_seconds",
                "Time the server took to read this scrape's figures from the database.",
                value=self.snapshot["scrape_seconds"],
            )

    @staticmethod
    def _channels(channels):
        done = CounterMetricFamily("async_lab_jobs_done", "Jobs done, since the install.", labels=["channel"])
        failed = CounterMetricFamily(
            "async_lab_jobs_failed", "Jobs that failed (each failure once), since the install.", labels=["channel"]
        )
        states = GaugeMetricFamily(
            "async_lab_jobs",
            "Jobs in each state but done and cancelled (those only grow: see the counters).",
            labels=["channel", "state"],
        )
        capacity = GaugeMetricFamily(
            "async_lab_channel_capacity", "Jobs the job runner lets run at once in the channel.", labels=["channel"]
        )
        stages = HistogramMetricFamily(
            "async_lab_job_stage_seconds",
            "Time of each stage of a done job: created_enqueued, enqueued_started, started_done.",
            labels=["channel", "stage"],
        )
        for row in channels:
            name = row["channel"]
            done.add_metric([name], row.get("done_total") or 0)
            failed.add_metric([name], row.get("failed_total") or 0)
            for state, count in sorted((row.get("states") or {}).items()):
                states.add_metric([name, state], count)
            if row.get("capacity") is not None:
                capacity.add_metric([name], row["capacity"])
            for stage in STAGES:
                histogram = (row.get("stages") or {}).get(stage)
                if histogram:
                    stages.add_metric([name, stage], cumulative(histogram["buckets"]), histogram["sum"])
        yield from (done, failed, states, capacity, stages)

    @staticmethod
    def _processes(processes):
        labels = ["host", "pid", "role"]
        families = {
            "up": GaugeMetricFamily("async_lab_process_up", "1 while the process reports itself alive.", labels=labels),
            "rss_bytes": GaugeMetricFamily(
                "async_lab_process_resident_memory_bytes", "Resident memory of the process.", labels=labels
            ),
            "cpu_seconds": CounterMetricFamily(
                "async_lab_process_cpu_seconds", "CPU time of the process (user + system).", labels=labels
            ),
            "requests": CounterMetricFamily(
                "async_lab_process_requests", "HTTP requests the process served.", labels=labels
            ),
            "jobs": CounterMetricFamily("async_lab_process_jobs", "Queue jobs the process ran.", labels=labels),
            "crons": CounterMetricFamily("async_lab_process_crons", "Cron jobs the process ran.", labels=labels),
            "start_time": GaugeMetricFamily(
                "async_lab_process_start_time_seconds",
                "Start of the process, in seconds since the epoch.",
                labels=labels,
            ),
        }
        for row in processes:
            values = [row["host"], str(row["pid"]), row["role"] or ""]
            for key, family in families.items():
                value = row.get(key)
                if value is not None:
                    family.add_metric(values, float(value))
        yield from families.values()


def exposition(snapshot):
    """The text exposition (bytes) of ``snapshot``, through a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
