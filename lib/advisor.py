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
    server_wide_modules (list), proxy_mode, gevent_port, cpu_count,
    channels ({name: queue_job's parsed config}, None when the host runs no
    job runner or its channels are unknown), channels_text (as configured)

``load``, what was measured over ``window`` seconds::

    channels: {name: {"arrivals", "done", "mean", "p50", "p95", "backlog"}}
              (durations in seconds: the time a job ran)
    runner_alive, runner_hosts, http_busy_with_jobs (0..1, or None),
    http_rss (bytes of each live HTTP worker), crons_late ([(name, seconds)]),
    users_online, pg_max_connections, pg_reserved_connections,
    pg_other_connections, user_impact (the latest "user impact" run, or None)
"""

import math

SEVERITIES = ("critical", "warning", "info")

#: A job whose p95 run time reaches this share of limit_time_real is near it.
NEAR_LIMIT = 0.8
#: Connections one process of each role holds while it works: a worker's
#: request or job cursor and the short transactions beside it (heartbeat, bus,
#: queue_job's lock); the cron worker's LISTEN connection and its job; the
#: runner's connection per database and its own.
CONNECTIONS_PER_PROCESS = {"http": 2, "cron": 2, "jobrunner": 2, "gevent": 2}
#: Late crons worth a finding: overdue by more than this many seconds.
CRON_LATE_AFTER = 300
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
    """A channel's configured capacity (its own, not its ancestors'), or None."""
    config = channels.get(name)
    return int(config.get("capacity") or 1) if config else None


def bound_capacity(channels, name):
    """How many jobs of ``name`` may run at once: the least capacity on its path.

    >>> conf = normalise({"root": {"capacity": 4}, "root.a": {"capacity": 6}, "root.a.s": {"capacity": 1}})
    >>> bound_capacity(conf, "root.a"), bound_capacity(conf, "root.a.s"), bound_capacity(conf, "root.b")
    (4, 1, 4)
    """
    parts = name.split(".")
    bounds = [capacity_of(channels, ".".join(parts[:depth])) for depth in range(1, len(parts) + 1)]
    bounds = [b for b in bounds if b is not None]
    return min(bounds) if bounds else None


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
        parts = [name, str(changed.get(name, capacity_of(channels, name)))]
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

    >>> [free_root(w) for w in (1, 2, 3, 4, 9, 16)]
    [1, 1, 2, 2, 6, 10]
    """
    return max(1, workers - max(1, math.ceil(workers / 3)))


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------


def check_server_wide(conf, load, host):
    """queue_job must be loaded server-wide for its job runner to exist.

    >>> conf = {"server_wide_modules": ["base", "web"], "channels": None}
    >>> [f["code"] for f in check_server_wide(conf, {"runner_alive": False}, "h")]
    ['queue_job_not_server_wide']
    >>> check_server_wide(dict(conf, server_wide_modules=["base", "web", "queue_job"]), {}, "h")
    []
    """
    modules = list(conf.get("server_wide_modules") or [])
    if "queue_job" in modules:
        return []
    fixed = modules + ["queue_job"]
    return [
        finding(
            "queue_job_not_server_wide",
            "critical" if not load.get("runner_alive") else "warning",
            "queue_job is not loaded server-wide on this host, so it runs no job runner: "
            "if no other host runs one, jobs stay pending forever.",
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
    """
    channels = conf.get("channels")
    if not channels or "root" not in channels:
        return []
    workers, root = conf.get("workers") or 0, capacity_of(channels, "root")
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
                "every worker, and users wait." % (root, workers),
                evidence,
                channels_line(channels, root=free_root(workers)),
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
    """
    channels = conf.get("channels") or {}
    findings = []
    for name in sorted(channels):
        if name == "root":
            continue
        parent = name.rsplit(".", 1)[0]
        own, bound = capacity_of(channels, name), bound_capacity(channels, parent)
        if bound is not None and own > bound:
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
    >>> connections_needed({"workers": 0, "max_cron_threads": 2, "server_wide_modules": []})
    6
    """
    per = CONNECTIONS_PER_PROCESS
    workers, crons = conf.get("workers") or 0, conf.get("max_cron_threads") or 0
    runner = per["jobrunner"] if "queue_job" in (conf.get("server_wide_modules") or []) else 0
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
    """A channel whose p95 run time is near limit_time_real: its jobs get killed and retried.

    >>> conf = {"workers": 4, "limit_time_real": 120}
    >>> load = {"channels": {"root.cpu": {"p95": 100.0, "done": 20}, "root.io": {"p95": 2.0, "done": 20}}}
    >>> [(f["code"], f["severity"], f["fix"]) for f in check_job_durations(conf, load, "h")]
    [('job_duration_near_limit', 'warning', 'limit_time_real = 200')]
    """
    limit = conf.get("limit_time_real")
    if not conf.get("workers") or not limit:
        return []  # threaded mode has no watchdog
    findings = []
    for name, stats in sorted((load.get("channels") or {}).items()):
        p95 = stats.get("p95")
        if p95 is None or p95 < NEAR_LIMIT * limit:
            continue
        findings.append(
            finding(
                "job_duration_near_limit",
                "critical" if p95 >= limit else "warning",
                "Jobs of %s run %.0f s at p95, %d%% of limit_time_real (%d s): the watchdog kills the "
                "slowest, and queue_job retries them." % (name, p95, round(100 * p95 / limit), limit),
                {"channel": name, "p95_seconds": round(p95, 1), "limit_time_real": limit, "jobs": stats.get("done")},
                "limit_time_real = %d" % math.ceil(p95 * 2),
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


def check_utilisation(conf, load, host):
    """Utilisation ρ ≥ 1 on a channel over the window: by Little's law its queue grows.

    >>> conf = {"channels": normalise({"root": {"capacity": 4}, "root.io": {"capacity": 2}})}
    >>> load = {"window": 600, "channels": {"root.io": {"arrivals": 600, "mean": 3.0, "done": 400, "backlog": 200}}}
    >>> [f] = check_utilisation(conf, load, "h")
    >>> f["code"], f["evidence"]["rho"], f["evidence"]["queue_growth_per_minute"], f["fix"]
    ('channel_saturated', 1.5, 20.0, 'channels = root:4,root.io:4')
    """
    channels = conf.get("channels")
    window = load.get("window") or 0
    if not channels or not window:
        return []
    findings = []
    for name, stats in sorted((load.get("channels") or {}).items()):
        capacity = bound_capacity(channels, full_name(name))
        mean, arrivals = stats.get("mean"), stats.get("arrivals") or 0
        if not capacity or not mean or not arrivals:
            continue
        rho, growth = utilisation(arrivals, window, mean, capacity)
        if rho < 1:
            continue
        needed = math.ceil(arrivals / window * mean / 0.8)
        root = capacity_of(channels, "root") or needed
        fix = channels_line(channels, **{full_name(name).replace(".", "__"): needed})
        if needed > root:
            fix = channels_line(channels, root=needed, **{full_name(name).replace(".", "__"): needed})
        findings.append(
            finding(
                "channel_saturated",
                "critical" if rho >= 1.5 else "warning",
                "Channel %s receives more work than it can run (ρ = %.2f): its queue grows by %.0f jobs "
                "a minute." % (name, rho, growth),
                {
                    "channel": name,
                    "rho": rho,
                    "arrivals_per_minute": round(arrivals / window * 60, 2),
                    "mean_seconds": round(mean, 3),
                    "capacity": capacity,
                    "queue_growth_per_minute": growth,
                    "backlog": stats.get("backlog") or 0,
                    "drain_seconds": drain_seconds(stats.get("backlog") or 0, arrivals, window, mean, capacity),
                    "window_seconds": window,
                },
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


def check_memory(conf, load, host):
    """limit_memory_soft below the workers' measured RSS: they recycle after nearly every request.

    >>> mib = 1024 * 1024
    >>> conf = {"workers": 2, "limit_memory_soft": 200 * mib}
    >>> [(f["code"], f["fix"]) for f in check_memory(conf, {"http_rss": [250 * mib, 180 * mib]}, "h")]
    [('memory_soft_below_rss', 'limit_memory_soft = 402653184')]
    """
    soft, rss = conf.get("limit_memory_soft"), [r for r in load.get("http_rss") or [] if r]
    if not conf.get("workers") or not soft or not rss or max(rss) < soft:
        return []
    above = sum(1 for r in rss if r >= soft)
    fix = int(math.ceil(max(rss) * 1.5 / (64 * 1024 * 1024)) * 64 * 1024 * 1024)
    return [
        finding(
            "memory_soft_below_rss",
            "warning",
            "%d of %d HTTP workers use more memory than limit_memory_soft (%d MiB): each recycles after "
            "its current request." % (above, len(rss), soft // (1024 * 1024)),
            {"limit_memory_soft": soft, "rss_max": max(rss), "workers_above": above, "workers": len(rss)},
            "limit_memory_soft = %d" % fix,
            host,
        )
    ]


def check_crons(conf, load, host):
    """Active crons overdue by minutes: the cron workers cannot keep up, or none runs.

    >>> [f["code"] for f in check_crons({"max_cron_threads": 1}, {"crons_late": [("Mail", 900)]}, "h")]
    ['crons_late']
    >>> check_crons({"max_cron_threads": 1}, {"crons_late": [("Mail", 30)]}, "h")
    []
    """
    late = [(name, seconds) for name, seconds in load.get("crons_late") or [] if seconds > CRON_LATE_AFTER]
    if not late:
        return []
    threads = conf.get("max_cron_threads") or 0
    return [
        finding(
            "crons_late",
            "warning" if threads else "critical",
            "%d scheduled action(s) are overdue, the worst by %d minutes: %s."
            % (
                len(late),
                max(s for _n, s in late) // 60,
                "no cron worker runs them (max_cron_threads = 0)" if not threads else "the cron workers are busy",
            ),
            {"late": [{"cron": n, "late_seconds": int(s)} for n, s in late], "max_cron_threads": threads},
            "max_cron_threads = %d" % (threads + 1),
            host,
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
    fix = (
        channels_line(channels, root=free_root(conf["workers"]))
        if "root" in channels
        else "workers = %d" % (conf["workers"] + 2)
    )
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
    check_root_capacity,
    check_sub_channels,
    check_connections,
    check_job_durations,
    check_utilisation,
    check_workers,
    check_threaded,
    check_memory,
    check_crons,
    check_jobs_hold_workers,
)
#: Rules on the database as a whole: ``rule(hosts, load)``.
DATABASE_RULES = (check_runner,)

#: What a healthy host was checked for, as the "nothing to fix" answer says.
CHECKED = (
    "queue_job server-wide and a job runner alive",
    "root capacity below the HTTP workers, and above 1",
    "no sub-channel above its parent",
    "db_maxconn and max_connections against the processes' connections",
    "p95 job durations below limit_time_real",
    "utilisation below 1 on every channel",
    "workers near 2 × cores + 1",
    "limit_memory_soft above the workers' memory",
    "crons on time",
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
    """
    findings = []
    for rule in DATABASE_RULES:
        findings.extend(rule(hosts, load))
    for host, conf in sorted(hosts.items()):
        host_load = dict(load, **(load.get("by_host") or {}).get(host, {}))
        for rule in RULES:
            findings.extend(rule(conf, host_load, host))
    return worst_first(findings)
