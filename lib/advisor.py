# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The capacity advisor's rules, from plain values.

Each host that serves the database is judged on its own configuration (what
its own processes report) and on the load measured in the database. A rule
returns findings: dicts with a stable ``code``, a ``severity``, a one-sentence
``title``, the ``evidence`` as figures and the ``fix``, the exact
configuration line to change. The model ``async_lab.advisor`` gathers the
inputs; nothing here reads a cursor or the clock.

``conf``, one host's configuration::

    workers, max_cron_threads, db_maxconn, limit_time_real, limit_time_cpu,
    limit_memory_soft, limit_memory_hard (bytes), limit_request,
    server_wide_modules (list), proxy_mode, gevent_port, cpu_count (the
    cores the process may use, its cgroup's CPU quota included),
    channels ({name: queue_job's parsed config}, None when the host runs no
    job runner or its channels are unknown), channels_text (as configured)

In queue_job's channels a capacity of 0 means unbounded, except that
channels starting with ``root:0`` disable the job runner on that node.

``load``, what was measured over ``window`` seconds::

    channels: {name: {"arrivals", "done", "mean", "p50", "p95", "backlog",
                      "running_max", "killed"}}
              (durations in seconds: the time a job ran; running_max, the
              longest run of a job still started; killed, jobs of the window
              whose worker the watchdog killed)
    runner_alive, runner_hosts, runner_nodes (labels of the nodes whose job
    runner serves the database), http_busy_with_jobs (0..1, or None),
    http_rss, http_vms (bytes of each live HTTP worker: resident, virtual),
    crons_late ([(name, seconds late, interval seconds)]),
    users_online, pg_max_connections, pg_reserved_connections,
    pg_other_connections, user_impact (the latest "user impact" run, or None)
"""

import math

from .channels import effective_capacity

SEVERITIES = ("critical", "warning", "info")

#: A job whose p95 run time reaches this share of limit_time_real is near it.
NEAR_LIMIT = 0.8
#: Connections one process of each role holds while it works: a worker's
#: request or job cursor and the short transactions beside it (heartbeat, bus,
#: queue_job's lock); the cron worker's LISTEN connection and its job; the
#: runner's connection per database and its own.
CONNECTIONS_PER_PROCESS = {"http": 2, "cron": 2, "jobrunner": 2, "gevent": 2}
#: A cron is late when its next call is overdue by more than its whole
#: interval (it missed a call), and by more than this many seconds: a cron
#: worker polls every 60 s (+ up to 10 s), so a one-minute cron is often a
#: minute behind without anything wrong.
CRON_LATE_AFTER = 120
#: Seconds in one unit of ``ir.cron.interval_type`` (a month counted as 30 days).
CRON_INTERVAL_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400, "weeks": 7 * 86400, "months": 30 * 86400}
#: The target utilisation of a channel's proposed capacity.
TARGET_RHO = 0.8
#: Share of HTTP workers held by jobs that leaves users waiting.
JOBS_HOLD_WORKERS = 0.75
#: Users online at once beyond which threaded mode (one process, one GIL) is
#: a bottleneck.
THREADED_USERS = 3


def finding(code, severity, title, evidence, fix, host=None):
    """One finding, as the API returns it."""
    assert severity in SEVERITIES, severity
    return {"code": code, "severity": severity, "title": title, "evidence": evidence, "fix": fix, "host": host}


def worst_first(findings):
    """Findings sorted by severity (critical first), then code and host.

    >>> [f["code"] for f in worst_first([finding("b", "info", "", {}, ""), finding("a", "critical", "", {}, "")])]
    ['a', 'b']
    """
    return sorted(findings, key=lambda f: (SEVERITIES.index(f["severity"]), f["code"], f["host"] or ""))


# ---------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------


def full_name(name):
    """queue_job's name for a channel: ``sub`` is ``root.sub``.

    >>> full_name("sub"), full_name("root"), full_name("root.a")
    ('root.sub', 'root', 'root.a')
    """
    return name if name == "root" or name.startswith("root.") else "root." + name


def normalise(channels):
    """``{full name: config}`` from the runner's parsed configuration."""
    return {full_name(name): dict(config, name=full_name(name)) for name, config in (channels or {}).items()}


def capacity_of(channels, name):
    """A channel's own configured capacity, or None: not configured, or unbounded.

    queue_job reads a capacity of 0 as "no bound of its own".

    >>> conf = normalise({"root": {"capacity": 4}, "root.a": {"capacity": 0}})
    >>> capacity_of(conf, "root"), capacity_of(conf, "root.a"), capacity_of(conf, "root.b")
    (4, None, None)
    """
    config = channels.get(name)
    return int(config["capacity"]) if config and config.get("capacity") else None


def bound_capacity(channels, name):
    """How many jobs of ``name`` may run at once: the least capacity on its path (None: unbounded).

    >>> conf = normalise({"root": {"capacity": 4}, "root.a": {"capacity": 6}, "root.a.s": {"capacity": 1}})
    >>> bound_capacity(conf, "root.a"), bound_capacity(conf, "root.a.s"), bound_capacity(conf, "root.b")
    (4, 1, 4)
    >>> bound_capacity(normalise({"root": {"capacity": 4}, "root.a": {"capacity": 0}}), "root.a")
    4
    """
    return effective_capacity(channels, name)


def runner_enabled(conf):
    """Whether this node starts queue_job's job runner: queue_job is server-wide and the
    channels do not start with ``root:0`` (queue_job's own test, on the configured text).

    >>> conf = {"server_wide_modules": ["base", "web", "queue_job"], "channels_text": "root:2"}
    >>> runner_enabled(conf), runner_enabled(dict(conf, channels_text=" root:0,root.a:1"))
    (True, False)
    >>> runner_enabled(dict(conf, server_wide_modules=["base", "web"]))
    False
    >>> runner_enabled({"server_wide_modules": ["queue_job"], "channels": normalise({"root": {"capacity": 0}})})
    False
    """
    if "queue_job" not in (conf.get("server_wide_modules") or []):
        return False
    text = conf.get("channels_text")
    if text is not None:
        return not text.strip().startswith("root:0")
    root = (conf.get("channels") or {}).get("root")
    return not (root and root.get("capacity") == 0)


def judges_channels(conf, load, host):
    """Whether the channel rules judge ``host``: the capacities that count are those of the
    node whose job runner serves the database (``load["runner_nodes"]``). When no runner is
    known to serve it, every node that would start one is judged (one of them will).

    >>> conf = {"server_wide_modules": ["queue_job"], "channels_text": "root:2", "channels": {"root": {}}}
    >>> judges_channels(conf, {"runner_nodes": ["a"]}, "a"), judges_channels(conf, {"runner_nodes": ["a"]}, "b")
    (True, False)
    >>> judges_channels(conf, {}, "b"), judges_channels(dict(conf, channels_text="root:0"), {}, "b")
    (True, False)
    """
    if not conf.get("channels"):
        return False
    nodes = load.get("runner_nodes")
    if nodes:
        return host in nodes
    return runner_enabled(conf)


def channels_line(channels, **capacities):
    """The ``channels =`` line for ``channels``, with some capacities changed.

    Options other than the capacity (``sequential``, ``throttle=2``) are kept.
    ``capacities`` maps a channel's full name, dots as ``__``, to its new
    capacity:

    >>> conf = normalise({"root": {"capacity": 8}, "root.s": {"capacity": 1, "sequential": True},
    ...                   "root.t": {"capacity": 2, "throttle": "2"}})
    >>> channels_line(conf, root=3)
    'channels = root:3,root.s:1:sequential,root.t:2:throttle=2'
    """
    changed = {key.replace("__", "."): value for key, value in capacities.items()}
    items = []
    for name in sorted(channels, key=lambda n: (n != "root", n)):
        config = channels[name]
        parts = [name, str(changed.get(name, config.get("capacity", 1)))]
        for key, value in sorted(config.items()):
            if key in ("name", "capacity"):
                continue
            parts.append(key if value is True else "%s=%s" % (key, value))
        items.append(":".join(parts))
    for name in sorted(set(changed) - set(channels)):
        items.append("%s:%s" % (name, changed[name]))
    return "channels = " + ",".join(items)


def free_root(workers):
    """The root capacity that leaves users at least a third of the HTTP workers (one at least).

    With one HTTP worker no root capacity leaves one free (0 would disable the
    runner): None, and the fix is more workers (:func:`workers_for_root`).

    >>> [free_root(w) for w in (1, 2, 3, 4, 9, 16)]
    [None, 1, 2, 2, 6, 10]
    """
    root = workers - max(1, math.ceil(workers / 3))
    return root if root >= 1 else None


def workers_for_root(root):
    """The fewest HTTP workers for which a root capacity of ``root`` leaves users their share.

    >>> [workers_for_root(r) for r in (1, 2, 4, 6)]
    [2, 3, 6, 9]
    """
    workers = root + 1
    while (free_root(workers) or 0) < root:
        workers += 1
    return workers


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------


def check_server_wide(conf, load, host):
    """queue_job must be loaded server-wide for its job runner to exist.

    Critical when no runner serves the database; when one is alive on another
    node, only information (a node without a runner is a valid setup).

    >>> conf = {"server_wide_modules": ["base", "web"], "channels": None}
    >>> [(f["code"], f["severity"]) for f in check_server_wide(conf, {"runner_alive": False}, "h")]
    [('queue_job_not_server_wide', 'critical')]
    >>> [(f["code"], f["severity"]) for f in check_server_wide(conf, {"runner_alive": True}, "h")]
    [('queue_job_not_server_wide', 'info')]
    >>> check_server_wide(dict(conf, server_wide_modules=["base", "web", "queue_job"]), {}, "h")
    []
    """
    modules = list(conf.get("server_wide_modules") or [])
    if "queue_job" in modules:
        return []
    fixed = modules + ["queue_job"]
    elsewhere = bool(load.get("runner_alive"))
    return [
        finding(
            "queue_job_not_server_wide",
            "info" if elsewhere else "critical",
            "queue_job is not loaded server-wide on this host, so it runs no job runner: "
            + (
                "the runner of another node serves the database."
                if elsewhere
                else "no other host runs one, so jobs stay pending forever."
            ),
            {"server_wide_modules": modules, "runner_alive_elsewhere": bool(load.get("runner_alive"))},
            "server_wide_modules = %s" % ",".join(fixed),
            host,
        )
    ]


def check_runner(hosts, load):
    """queue_job is server-wide on some node, but no job runner is alive for the database.

    A database-wide finding (``host`` None): queue_job runs one runner per database.

    >>> conf = {"server_wide_modules": ["base", "web", "queue_job"]}
    >>> [(f["code"], f["host"]) for f in check_runner({"h": conf}, {"runner_alive": False, "runner_hosts": []})]
    [('runner_not_alive', None)]
    >>> check_runner({"h": conf}, {"runner_alive": True})
    []
    """
    server_wide = any("queue_job" in (conf.get("server_wide_modules") or []) for conf in hosts.values())
    if load.get("runner_alive") or not server_wide:
        return []
    backlog = sum(c.get("backlog") or 0 for c in (load.get("channels") or {}).values())
    return [
        finding(
            "runner_not_alive",
            "critical",
            "No job runner is alive for this database: pending jobs are never enqueued.",
            {"runner_hosts": load.get("runner_hosts") or [], "jobs_waiting": backlog},
            "Restart Odoo (the runner takes its databases when it starts) and check that "
            "channels does not start with root:0 (which disables the runner)",
        )
    ]


def check_root_capacity(conf, load, host):
    """Root capacity against HTTP workers: jobs run inside HTTP workers.

    >>> conf = {"workers": 4, "channels": normalise({"root": {"capacity": 4}})}
    >>> [(f["code"], f["fix"]) for f in check_root_capacity(conf, {}, "h")]
    [('root_capacity_ge_workers', 'channels = root:2')]
    >>> [f["code"] for f in check_root_capacity(dict(conf, channels=normalise({"root": {"capacity": 1}})), {}, "h")]
    ['root_capacity_one']

    Two workers and root:1 is the right setting: no finding.

    >>> check_root_capacity({"workers": 2, "channels": normalise({"root": {"capacity": 1}})}, {}, "h")
    []

    One worker: no root capacity leaves users a worker, so the fix is more workers.

    >>> [(f["code"], f["fix"]) for f in check_root_capacity(dict(conf, workers=1, channels=normalise(
    ...     {"root": {"capacity": 1}})), {}, "h")]
    [('root_capacity_ge_workers', 'workers = 2')]
    """
    channels = conf.get("channels")
    if not channels or "root" not in channels:
        return []
    workers, root = conf.get("workers") or 0, capacity_of(channels, "root")
    if root is None:  # root:0 disables the runner: not judged here
        return []
    findings = []
    if workers and root >= workers:
        evidence = {"root_capacity": root, "http_workers": workers}
        impact = load.get("user_impact")
        if impact:
            evidence["user_impact"] = impact
        busy = load.get("http_busy_with_jobs")
        if busy is not None:
            evidence["http_busy_with_jobs"] = round(busy, 2)
        findings.append(
            finding(
                "root_capacity_ge_workers",
                "critical",
                "Root channel capacity %d is not below the %d HTTP workers: a burst of jobs can take "
                "every worker, and users wait%s."
                % (root, workers, "" if free_root(workers) else " (raise workers: one worker leaves none to spare)"),
                evidence,
                channels_line(channels, root=free_root(workers))
                if free_root(workers)
                else "workers = %d" % workers_for_root(root),
                host,
            )
        )
    elif root == 1 and (workers == 0 or workers >= 3):
        findings.append(
            finding(
                "root_capacity_one",
                "warning",
                "Root channel capacity is 1: every job of every channel runs one after the other.",
                {"root_capacity": 1, "http_workers": workers},
                channels_line(channels, root=free_root(workers) if workers else 2),
                host,
            )
        )
    return findings


def check_sub_channels(conf, load, host):
    """A sub-channel configured above its parent gets only its parent's capacity.

    >>> conf = {"channels": normalise({"root": {"capacity": 2}, "root.io": {"capacity": 5}})}
    >>> [(f["code"], f["fix"]) for f in check_sub_channels(conf, {}, "h")]
    [('channel_above_parent', 'channels = root:2,root.io:2')]

    Capacity 0 is unbounded (bound by the parent), not above it:

    >>> check_sub_channels({"channels": normalise({"root": {"capacity": 2}, "root.io": {"capacity": 0}})}, {}, "h")
    []
    """
    channels = conf.get("channels") or {}
    findings = []
    for name in sorted(channels):
        if name == "root":
            continue
        parent = name.rsplit(".", 1)[0]
        own, bound = capacity_of(channels, name), bound_capacity(channels, parent)
        if own is not None and bound is not None and own > bound:
            findings.append(
                finding(
                    "channel_above_parent",
                    "warning",
                    "Channel %s has capacity %d, above the %d that %s allows: the extra capacity is never "
                    "used." % (name, own, bound, parent),
                    {"channel": name, "capacity": own, "parent": parent, "parent_capacity": bound},
                    channels_line(channels, **{name.replace(".", "__"): bound}),
                    host,
                )
            )
    return findings


def connections_needed(conf):
    """PostgreSQL connections the host's processes hold while they work.

    >>> connections_needed({"workers": 4, "max_cron_threads": 1, "server_wide_modules": ["queue_job"]})
    14

    A node whose channels start with ``root:0`` starts no runner:

    >>> connections_needed({"workers": 4, "max_cron_threads": 1, "server_wide_modules": ["queue_job"],
    ...                     "channels_text": "root:0"})
    12
    >>> connections_needed({"workers": 0, "max_cron_threads": 2, "server_wide_modules": []})
    6
    """
    per = CONNECTIONS_PER_PROCESS
    workers, crons = conf.get("workers") or 0, conf.get("max_cron_threads") or 0
    runner = per["jobrunner"] if runner_enabled(conf) else 0
    if workers:
        return workers * per["http"] + crons * per["cron"] + runner + per["gevent"]
    # Threaded: one process, one pool, one HTTP thread at a time counted.
    return per["http"] + crons * per["cron"] + runner


def check_connections(conf, load, host):
    """db_maxconn and PostgreSQL's max_connections against what the processes hold.

    In prefork each process has its own pool of ``db_maxconn``; a threaded
    server has one pool for all its threads (and serves ``db_maxconn // 2``
    requests at once).

    >>> load = {"pg_max_connections": 100, "pg_reserved_connections": 3, "pg_other_connections": 0}
    >>> check_connections({"workers": 9, "max_cron_threads": 1, "db_maxconn": 64,
    ...                    "server_wide_modules": ["queue_job"]}, load, "h")
    []
    >>> [f["code"] for f in check_connections({"workers": 60, "max_cron_threads": 2, "db_maxconn": 64,
    ...                                        "server_wide_modules": ["queue_job"]}, load, "h")]
    ['max_connections_low']
    >>> [f["code"] for f in check_connections({"workers": 0, "max_cron_threads": 2, "db_maxconn": 4,
    ...                                        "server_wide_modules": ["queue_job"]}, load, "h")]
    ['db_maxconn_low']
    """
    findings = []
    need = connections_needed(conf)
    maxconn = conf.get("db_maxconn") or 64
    workers = conf.get("workers") or 0
    per_process = CONNECTIONS_PER_PROCESS["http"] if workers else need
    if maxconn < per_process:
        findings.append(
            finding(
                "db_maxconn_low",
                "critical",
                "db_maxconn %d is below the %d connections %s needs: requests fail with "
                "'The Connection Pool Is Full'." % (maxconn, per_process, "a worker" if workers else "this server"),
                {
                    "db_maxconn": maxconn,
                    "needed": per_process,
                    "workers": workers,
                    "max_cron_threads": conf.get("max_cron_threads") or 0,
                },
                "db_maxconn = %d" % max(per_process * 2, 16),
                host,
            )
        )
    limit = load.get("pg_max_connections")
    if limit:
        available = limit - (load.get("pg_reserved_connections") or 0) - (load.get("pg_other_connections") or 0)
        if need > available:
            findings.append(
                finding(
                    "max_connections_low",
                    "critical",
                    "This host's processes hold about %d PostgreSQL connections while they work, and the "
                    "server accepts %d more: requests and jobs fail with 'too many clients'." % (need, available),
                    {"needed": need, "max_connections": limit, "available": available, "workers": workers},
                    "max_connections = %d  (postgresql.conf; or lower workers)" % (limit + need - available + 10),
                    host,
                )
            )
    return findings


def check_job_durations(conf, load, host):
    """A channel whose jobs run near limit_time_real, or past it: the watchdog kills them, and
    queue_job retries them until it fails them ("found dead").

    The duration is the p95 of the done jobs, or the run so far of a job still
    started, whichever is longer; a channel whose every job is killed has no
    done job, so jobs whose worker the watchdog killed count on their own.

    >>> conf = {"workers": 4, "limit_time_real": 120}
    >>> load = {"channels": {"root.cpu": {"p95": 100.0, "done": 20}, "root.io": {"p95": 2.0, "done": 20}}}
    >>> [(f["code"], f["severity"], f["fix"]) for f in check_job_durations(conf, load, "h")]
    [('job_duration_near_limit', 'warning', 'limit_time_real = 200')]

    No job finishes, one has run 150 s so far, and three were killed:

    >>> load = {"channels": {"root.cpu": {"p95": None, "done": 0, "running_max": 150.0, "killed": 3}}}
    >>> [(f["severity"], f["evidence"]["killed_by_watchdog"], f["fix"]) for f in check_job_durations(conf, load, "h")]
    [('critical', 3, 'limit_time_real = 300')]
    """
    limit = conf.get("limit_time_real")
    if not conf.get("workers") or not limit:
        return []  # threaded mode has no watchdog
    findings = []
    for name, stats in sorted((load.get("channels") or {}).items()):
        p95, running, killed = stats.get("p95"), stats.get("running_max"), stats.get("killed") or 0
        longest = max(p95 or 0.0, running or 0.0)
        if not killed and longest < NEAR_LIMIT * limit:
            continue
        if killed:
            title = (
                "The watchdog killed %d job(s) of %s at limit_time_real (%d s): queue_job retries them, "
                "then fails them as found dead." % (killed, name, limit)
            )
        else:
            title = (
                "Jobs of %s run %.0f s%s, %d%% of limit_time_real (%d s): the watchdog kills the "
                "slowest, and queue_job retries them."
                % (
                    name,
                    longest,
                    " at p95" if (p95 or 0) >= (running or 0) else " (one still running)",
                    round(100 * longest / limit),
                    limit,
                )
            )
        findings.append(
            finding(
                "job_duration_near_limit",
                "critical" if killed or longest >= limit else "warning",
                title,
                {
                    "channel": name,
                    "p95_seconds": round(p95, 1) if p95 is not None else None,
                    "running_seconds": round(running, 1) if running is not None else None,
                    "killed_by_watchdog": killed,
                    "limit_time_real": limit,
                    "jobs": stats.get("done"),
                },
                "limit_time_real = %d" % math.ceil(max(longest, limit if killed else 0) * 2),
                host,
            )
        )
    return findings


def utilisation(arrivals, window, mean, capacity):
    """ρ = λ × mean ÷ capacity, and the queue's growth per minute when ρ ≥ 1.

    50 jobs a minute of 3 s each on 2 slots: 2.5 slots' worth of work arrives,
    the queue grows by 10 jobs a minute.

    >>> utilisation(50, 60, 3.0, 2)
    (1.25, 10.0)
    >>> utilisation(10, 60, 3.0, 2)
    (0.25, 0.0)
    """
    rate = arrivals / window
    rho = rate * mean / capacity
    growth = max(0.0, (rate - capacity / mean) * 60)
    return round(rho, 3), round(growth, 2)


def drain_seconds(backlog, arrivals, window, mean, capacity):
    """Seconds to drain ``backlog`` at the measured arrival rate, or None if it never drains.

    >>> drain_seconds(100, 10, 60, 3.0, 2)
    200.0
    >>> drain_seconds(100, 50, 60, 3.0, 2) is None
    True
    """
    spare = capacity / mean - arrivals / window
    if spare <= 0:
        return None
    return round(backlog / spare, 1)


def channel_loads(channels, measured):
    """The load of each channel with a capacity of its own: its jobs' and its sub-channels'.

    A child's running jobs count against its parent, so a parent's load is the
    sum of its sub-channels' (and its own jobs'). ``work`` is the seconds of
    running that arrived (arrivals × mean run time, from the channels with a
    mean); ``sub_channels`` the measured channels summed.

    >>> conf = normalise({"root": {"capacity": 4}, "root.a": {"capacity": 2}})
    >>> loads = channel_loads(conf, {"root.a": {"arrivals": 60, "mean": 1.0, "backlog": 2},
    ...                              "root.b": {"arrivals": 30, "mean": 2.0, "backlog": 1}})
    >>> sorted(loads)
    ['root', 'root.a']
    >>> loads["root"]["arrivals"], loads["root"]["work"], loads["root"]["backlog"], loads["root"]["sub_channels"]
    (90, 120.0, 3, ['root.a', 'root.b'])
    """
    measured = {full_name(name): stats for name, stats in (measured or {}).items()}
    names = set()
    for name in measured:
        parts = name.split(".")
        names.update(".".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    loads = {}
    for name in sorted(names):
        if capacity_of(channels, name) is None:
            continue  # no bound of its own: its load is judged on the channel that bounds it
        subs = sorted(m for m in measured if m == name or m.startswith(name + "."))
        timed = [measured[m] for m in subs if measured[m].get("mean") and measured[m].get("arrivals")]
        arrivals = sum(stats["arrivals"] for stats in timed)
        if not arrivals:
            continue
        loads[name] = {
            "arrivals": arrivals,
            "work": sum(stats["arrivals"] * stats["mean"] for stats in timed),
            "backlog": sum(measured[m].get("backlog") or 0 for m in subs),
            "sub_channels": subs,
        }
    return loads


def proposed_capacities(channels, name, needed, workers):
    """``{full name: capacity}`` giving ``name`` ``needed`` slots: it and each ancestor below
    ``needed`` are raised, none above :func:`free_root` of the HTTP workers (prefork only).

    >>> conf = normalise({"root": {"capacity": 2}, "root.io": {"capacity": 1}})
    >>> proposed_capacities(conf, "root.io", 4, 0), proposed_capacities(conf, "root.io", 4, 4)
    ({'root': 4, 'root.io': 4}, {'root': 2, 'root.io': 2})
    """
    parts = name.split(".")
    changes = {}
    for depth in range(1, len(parts) + 1):
        ancestor = ".".join(parts[:depth])
        own = capacity_of(channels, ancestor)
        if ancestor == name or (own is not None and own < needed):
            changes[ancestor] = needed
    if workers:
        cap = free_root(workers) or capacity_of(channels, "root") or 1
        changes = {n: min(capacity, cap) for n, capacity in changes.items()}
    return changes


def check_utilisation(conf, load, host):
    """Utilisation ρ ≥ 1 on a channel over the window: by Little's law its queue grows.

    Judged on each channel with a capacity of its own, a parent on the sum of
    its sub-channels' load. The fix brings ρ to 0.8 where the HTTP workers
    allow it (the root capacity stays at :func:`free_root`); ``drain_seconds``
    is the backlog's drain time at the proposed capacity.

    >>> conf = {"channels": normalise({"root": {"capacity": 4}, "root.io": {"capacity": 2}})}
    >>> load = {"window": 600, "channels": {"root.io": {"arrivals": 600, "mean": 3.0, "done": 400, "backlog": 200}}}
    >>> [f] = check_utilisation(conf, load, "h")
    >>> f["code"], f["evidence"]["rho"], f["evidence"]["queue_growth_per_minute"], f["fix"]
    ('channel_saturated', 1.5, 20.0, 'channels = root:4,root.io:4')
    >>> f["evidence"]["proposed_capacity"], f["evidence"]["drain_seconds"]
    (4, 600.0)

    Two sub-channels within their own capacity saturate their parent:

    >>> conf = {"channels": normalise({"root": {"capacity": 2}, "root.a": {"capacity": 2},
    ...                                "root.b": {"capacity": 2}})}
    >>> busy = {"arrivals": 60, "mean": 1.5}
    >>> load = {"window": 60, "channels": {"root.a": busy, "root.b": busy}}
    >>> [(f["evidence"]["channel"], f["evidence"]["rho"], f["fix"]) for f in check_utilisation(conf, load, "h")]
    [('root', 1.5, 'channels = root:4,root.a:2,root.b:2')]

    With 3 HTTP workers the root capacity stops at 2: the rest takes more workers.

    >>> [f] = check_utilisation(dict(conf, workers=3), load, "h")
    >>> f["fix"], f["evidence"]["proposed_capacity"], f["evidence"]["workers_needed"]
    ('workers = 6', 2, 6)
    """
    channels = conf.get("channels")
    window = load.get("window") or 0
    if not channels or not window:
        return []
    workers = conf.get("workers") or 0
    findings = []
    loads = channel_loads(channels, load.get("channels"))
    for name, stats in sorted(loads.items()):
        capacity = bound_capacity(channels, name)
        if any(
            other.startswith(name + ".")
            and loads[other]["sub_channels"] == stats["sub_channels"]
            and bound_capacity(channels, other) == capacity
            for other in loads
        ):
            continue  # the same jobs against the same bound: judged on the deeper channel, whose fix covers this one
        arrivals, work, backlog = stats["arrivals"], stats["work"], stats["backlog"]
        mean = work / arrivals
        rho, growth = utilisation(arrivals, window, mean, capacity)
        if rho < 1:
            continue
        needed = math.ceil(work / window / TARGET_RHO)
        changes = proposed_capacities(channels, name, needed, workers)
        fixed = dict(channels, **{n: dict(channels.get(n) or {}, capacity=c) for n, c in changes.items()})
        proposed = bound_capacity(fixed, name)
        evidence = {
            "channel": name,
            "rho": rho,
            "arrivals_per_minute": round(arrivals / window * 60, 2),
            "mean_seconds": round(mean, 3),
            "capacity": capacity,
            "queue_growth_per_minute": growth,
            "backlog": backlog,
            "drain_seconds": drain_seconds(backlog, arrivals, window, mean, proposed),
            "proposed_capacity": proposed,
            "window_seconds": window,
        }
        if stats["sub_channels"] != [name]:
            evidence["sub_channels"] = stats["sub_channels"]
        if proposed < needed:
            evidence["workers_needed"] = workers_for_root(needed)
        if proposed <= capacity:
            fix = "workers = %d" % workers_for_root(needed)
        else:
            fix = channels_line(channels, **{n.replace(".", "__"): c for n, c in changes.items()})
        findings.append(
            finding(
                "channel_saturated",
                "critical" if rho >= 1.5 else "warning",
                "Channel %s receives more work than it can run (ρ = %.2f): its queue grows by %.0f jobs "
                "a minute." % (name, rho, growth),
                evidence,
                fix,
                host,
            )
        )
    return findings


def check_workers(conf, load, host):
    """``workers`` against the rule of thumb 2 × cores + 1.

    >>> [f["code"] for f in check_workers({"workers": 2, "cpu_count": 8}, {}, "h")]
    ['workers_vs_cores']
    >>> check_workers({"workers": 9, "cpu_count": 4}, {}, "h"), check_workers({"workers": 9, "cpu_count": 2}, {}, "h")
    ([], [])
    """
    workers, cores = conf.get("workers") or 0, conf.get("cpu_count") or 0
    if not workers or not cores:
        return []
    ideal = 2 * cores + 1
    if cores + 1 <= workers <= 2 * ideal:
        return []
    return [
        finding(
            "workers_vs_cores",
            "warning",
            "%d HTTP workers on %d cores is far from 2 × cores + 1 = %d: %s."
            % (
                workers,
                cores,
                ideal,
                "the cores sit idle while workers wait on I/O"
                if workers < ideal
                else "the workers compete for the cores and memory",
            ),
            {"workers": workers, "cpu_count": cores, "rule_of_thumb": ideal},
            "workers = %d" % ideal,
            host,
        )
    ]


def check_threaded(conf, load, host):
    """Threaded mode (workers = 0) serving several users: one process, one GIL, no watchdog.

    >>> [f["code"] for f in check_threaded({"workers": 0, "cpu_count": 2}, {"users_online": 5}, "h")]
    ['threaded_multi_user']
    >>> check_threaded({"workers": 0, "cpu_count": 2}, {"users_online": 1}, "h")
    []
    """
    users = load.get("users_online") or 0
    if conf.get("workers") or users < THREADED_USERS:
        return []
    ideal = 2 * (conf.get("cpu_count") or 1) + 1
    return [
        finding(
            "threaded_multi_user",
            "warning",
            "This server runs in threaded mode (workers = 0) for %d users online: one process and one GIL "
            "serve them all, with no time or memory limits." % users,
            {"workers": 0, "users_online": users},
            "workers = %d" % ideal,
            host,
        )
    ]


def memory_line(size):
    """``size`` bytes × 1.5, rounded up to 64 MiB: a limit with headroom.

    >>> memory_line(250 * 1024 * 1024) // (1024 * 1024)
    384
    """
    step = 64 * 1024 * 1024
    return int(math.ceil(size * 1.5 / step) * step)


def check_memory(conf, load, host):
    """limit_memory_soft below the workers' measured virtual memory: they recycle after nearly every request.

    Odoo's prefork compares limit_memory_soft (and RLIMIT_AS, limit_memory_hard)
    with a worker's virtual size (VMS, ``psutil``'s ``memory_info().vms``), not
    its RSS. A soft limit raised to or past the hard limit takes the hard limit
    up with it (otherwise RLIMIT_AS kills the worker first).

    >>> mib = 1024 * 1024
    >>> conf = {"workers": 2, "limit_memory_soft": 200 * mib, "limit_memory_hard": 2560 * mib}
    >>> [(f["code"], f["fix"]) for f in check_memory(conf, {"http_vms": [250 * mib, 180 * mib]}, "h")]
    [('memory_soft_below_rss', 'limit_memory_soft = 402653184')]
    >>> check_memory(conf, {"http_vms": [150 * mib], "http_rss": [250 * mib]}, "h")
    []
    >>> [f["fix"] for f in check_memory(dict(conf, limit_memory_hard=300 * mib), {"http_vms": [250 * mib]}, "h")]
    ['limit_memory_soft = 402653184\\nlimit_memory_hard = 536870912']
    """
    soft, vms = conf.get("limit_memory_soft"), [v for v in load.get("http_vms") or [] if v]
    if not conf.get("workers") or not soft or not vms or max(vms) < soft:
        return []
    above = sum(1 for v in vms if v >= soft)
    fix = memory_line(max(vms))
    hard = conf.get("limit_memory_hard") or 0  # 0: no RLIMIT_AS
    lines = ["limit_memory_soft = %d" % fix]
    evidence = {"limit_memory_soft": soft, "vms_max": max(vms), "workers_above": above, "workers": len(vms)}
    if hard:
        evidence["limit_memory_hard"] = hard
    if hard and fix >= hard:
        lines.append("limit_memory_hard = %d" % memory_line(fix * 5 // 6))  # 1.25 × the soft limit
    rss = [r for r in load.get("http_rss") or [] if r]
    if rss:
        evidence["rss_max"] = max(rss)
    return [
        finding(
            "memory_soft_below_rss",
            "warning",
            "%d of %d HTTP workers use more virtual memory than limit_memory_soft (%d MiB): each recycles "
            "after its current request." % (above, len(vms), soft // (1024 * 1024)),
            evidence,
            "\n".join(lines),
            host,
        )
    ]


def cron_interval(number, unit):
    """Seconds between two calls of a cron (``interval_number``, ``interval_type``).

    >>> cron_interval(5, "minutes"), cron_interval(1, "days"), cron_interval(1, "months")
    (300, 86400, 2592000)
    """
    return int(number or 1) * CRON_INTERVAL_SECONDS.get(unit, 60)


def late_crons(crons_late):
    """The crons that are late: overdue by more than their whole interval (a call missed),
    and by more than ``CRON_LATE_AFTER`` seconds (a cron worker's polling).

    >>> late_crons([("every minute", 100, 60), ("every minute", 150, 60), ("hourly", 1800, 3600)])
    [('every minute', 150, 60)]
    """
    return [
        (name, seconds, interval)
        for name, seconds, interval in crons_late or []
        if seconds > max(interval or 0, CRON_LATE_AFTER)
    ]


def check_crons(hosts, load):
    """Active crons late by more than their interval: the database's cron workers cannot keep up, or none runs.

    Any node's cron workers run any cron of the database, so the capacity is
    the sum of ``max_cron_threads`` over the live nodes; a database-wide
    finding (``host`` None), whose fix adds a cron worker on the node with the fewest.

    >>> hosts = {"a": {"max_cron_threads": 1}, "b": {"max_cron_threads": 2}}
    >>> [f] = check_crons(hosts, {"crons_late": [("Mail", 900, 60)]})
    >>> f["code"], f["severity"], f["host"], f["evidence"]["max_cron_threads"], f["fix"], f["evidence"]["fix_node"]
    ('crons_late', 'warning', None, 3, 'max_cron_threads = 2', 'a')
    >>> check_crons(hosts, {"crons_late": [("Daily", 900, 86400)]})
    []
    >>> [f["severity"] for f in check_crons({"a": {"max_cron_threads": 0}}, {"crons_late": [("Mail", 900, 60)]})]
    ['critical']
    """
    late = late_crons(load.get("crons_late"))
    if not late or not hosts:
        return []
    by_node = {node: conf.get("max_cron_threads") or 0 for node, conf in sorted(hosts.items())}
    threads = sum(by_node.values())
    fewest = min(by_node, key=lambda node: (by_node[node], node))
    return [
        finding(
            "crons_late",
            "warning" if threads else "critical",
            "%d scheduled action(s) are late by more than their interval, the worst by %d minutes: %s."
            % (
                len(late),
                max(s for _n, s, _i in late) // 60,
                "no cron worker runs them (max_cron_threads = 0 on every node)"
                if not threads
                else "the %d cron worker(s) of the database are busy" % threads,
            ),
            {
                "late": [{"cron": n, "late_seconds": int(s), "interval_seconds": int(i)} for n, s, i in late],
                "max_cron_threads": threads,
                "max_cron_threads_by_node": by_node,
                "fix_node": fewest,
            },
            "max_cron_threads = %d" % (by_node[fewest] + 1),
        )
    ]


def check_jobs_hold_workers(conf, load, host):
    """Jobs hold most HTTP workers: users queue behind them.

    >>> [f["code"] for f in check_jobs_hold_workers({"workers": 4, "channels": {}}, {"http_busy_with_jobs": 0.9}, "h")]
    ['jobs_hold_workers']
    """
    share = load.get("http_busy_with_jobs")
    if share is None or not conf.get("workers") or share < JOBS_HOLD_WORKERS:
        return []
    channels = conf.get("channels") or {}
    root = free_root(conf["workers"])
    fix = channels_line(channels, root=root) if root and "root" in channels else "workers = %d" % (conf["workers"] + 2)
    return [
        finding(
            "jobs_hold_workers",
            "warning",
            "Jobs held %d%% of the HTTP workers over the window: interactive requests wait for a free one."
            % round(100 * share),
            {"http_busy_with_jobs": round(share, 2), "http_workers": conf["workers"]},
            fix,
            host,
        )
    ]


#: Rules on one node's configuration and load: ``rule(conf, load, host)``.
RULES = (
    check_server_wide,
    check_connections,
    check_workers,
    check_threaded,
    check_memory,
)
#: Rules on the job runner's channels, judged only on the node whose runner
#: serves the database (:func:`judges_channels`): ``rule(conf, load, host)``.
CHANNEL_RULES = (
    check_root_capacity,
    check_sub_channels,
    check_job_durations,
    check_utilisation,
    check_jobs_hold_workers,
)
#: Rules on the database as a whole: ``rule(hosts, load)``.
DATABASE_RULES = (check_runner, check_crons)

#: What a healthy host was checked for, as the "nothing to fix" answer says.
CHECKED = (
    "queue_job server-wide and a job runner alive",
    "root capacity below the HTTP workers, and above 1",
    "no sub-channel above its parent",
    "db_maxconn and max_connections against the processes' connections",
    "job durations (p95, and jobs still running) below limit_time_real, none killed by the watchdog",
    "utilisation below 1 on every channel and parent",
    "workers near 2 × cores + 1 (cores within the cgroup's CPU quota)",
    "limit_memory_soft above the workers' virtual memory",
    "crons within their interval",
    "HTTP workers left to users",
)


def advise(hosts, load):
    """All findings for ``hosts`` (``{host: conf}``), worst first.

    ``load["by_host"]`` (``{host: {...}}``) holds what is measured per host
    (its workers' memory, the connections others hold), over the shared load.

    >>> conf = {"workers": 9, "max_cron_threads": 1, "db_maxconn": 64, "cpu_count": 4,
    ...         "server_wide_modules": ["base", "web", "queue_job"], "limit_time_real": 120,
    ...         "channels": normalise({"root": {"capacity": 4}, "root.io": {"capacity": 3}})}
    >>> advise({"h": conf}, {"runner_alive": True, "window": 900, "channels": {}})
    []
    >>> [f["code"] for f in advise({"h": dict(conf, workers=4)}, {"runner_alive": True})]
    ['root_capacity_ge_workers', 'workers_vs_cores']

    The channels are judged on the node whose runner serves the database only:

    >>> found = advise({"a": dict(conf, workers=4), "b": dict(conf, workers=4)},
    ...                {"runner_alive": True, "runner_nodes": ["b"]})
    >>> [(f["code"], f["host"]) for f in found if f["severity"] == "critical"]
    [('root_capacity_ge_workers', 'b')]
    """
    findings = []
    for rule in DATABASE_RULES:
        findings.extend(rule(hosts, load))
    for host, conf in sorted(hosts.items()):
        host_load = dict(load, **(load.get("by_host") or {}).get(host, {}))
        for rule in RULES:
            findings.extend(rule(conf, host_load, host))
        if judges_channels(conf, host_load, host):
            for rule in CHANNEL_RULES:
                findings.extend(rule(conf, host_load, host))
    return worst_first(findings)
