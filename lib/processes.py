# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What an Odoo process is, from evidence, and how its life ended.

Pure functions: thread names, PIDs, configuration values and rows are passed
in, so all of it is testable without a server or a database.

Evidence used for roles (never the PID order):

* prefork workers run their work in a thread named
  ``Worker <Class> (<pid>) workthread`` (``WorkerHTTP``, ``WorkerCron`` and
  queue_job's ``WorkerJobRunner``);
* the websocket process is an exec of ``odoo gevent ...`` (``odoo.evented``);
* with ``workers = 0`` one process serves everything with threads: Odoo
  sets ``type`` (``http``, ``websocket``, ``cron``) on request and cron
  threads; the HTTP listener and queue_job's runner thread are known by
  name and class (:func:`thread_role`);
* the master is the process whose PID is ``server.pid``; in a worker,
  ``server`` is the master's object inherited through ``fork``.
"""

import random
import re
from dataclasses import dataclass

ROLES = [
    ("master", "Master"),
    ("http", "HTTP worker"),
    ("cron", "Cron worker"),
    ("jobrunner", "Job runner"),
    ("gevent", "Gevent (websocket)"),
    ("threaded", "Threaded server"),
]
STATES = [("alive", "Alive"), ("stale", "Stale"), ("gone", "Gone")]
EXIT_REASONS = [
    ("killed", "Killed (signal, OOM or crash)"),
    ("memory_limit", "Memory limit (limit_memory_soft)"),
    ("time_limit_cpu", "CPU time limit (limit_time_cpu)"),
    ("time_limit_real", "Real time limit (limit_time_real)"),
    ("request_limit", "Request limit (limit_request)"),
    ("master_gone", "Master gone"),
    ("stopped", "Stopped (SIGINT: recycled)"),
    ("crashed", "Crashed (exception in its loop)"),
    ("server_stop", "Server stopped"),
    ("server_reload", "Server reloaded (SIGHUP)"),
]

#: Seconds between two heartbeats of a process.
HEARTBEAT_INTERVAL = 5
#: A process whose heartbeat is older than this is "stale".
STALE_AFTER = 4 * HEARTBEAT_INTERVAL
#: A process of another host not heard of for this long is "gone".
GONE_AFTER = 120

WORKER_THREAD = re.compile(r"^Worker (?P<cls>\w+) \((?P<pid>\d+)\) workthread$")
WORKER_CLASS_ROLES = {"WorkerHTTP": "http", "WorkerCron": "cron", "WorkerJobRunner": "jobrunner"}
#: Threads of a threaded-mode server that Odoo gives no ``type``.
THREAD_NAME_ROLES = {"odoo.service.httpd": "http"}  # the HTTP accept loop
THREAD_CLASS_ROLES = {"QueueJobRunnerThread": "jobrunner"}  # queue_job, workers = 0


def detect_role(pid, thread_names, *, evented=False, workers=0, master_pid=None):
    """Role of the process ``pid`` from the names of its threads.

    >>> detect_role(12, ["MainThread", "Worker WorkerHTTP (12) workthread"], workers=2, master_pid=10)
    'http'
    >>> detect_role(13, ["MainThread", "Worker WorkerCron (13) workthread"], workers=2, master_pid=10)
    'cron'
    >>> detect_role(14, ["Worker WorkerJobRunner (14) workthread"], workers=2, master_pid=10)
    'jobrunner'
    >>> detect_role(10, ["MainThread"], workers=2, master_pid=10)
    'master'
    >>> detect_role(15, ["MainThread"], evented=True, workers=2, master_pid=10)
    'gevent'
    >>> detect_role(20, ["MainThread", "odoo.service.cron.cron0"], workers=0, master_pid=20)
    'threaded'

    A worker thread of another PID (a stale copy after fork) is no evidence;
    without any, the role is unknown (None):

    >>> detect_role(16, ["Worker WorkerHTTP (12) workthread"], workers=2, master_pid=10) is None
    True
    """
    if evented:
        return "gevent"
    for name in thread_names:
        match = WORKER_THREAD.match(name)
        if match and int(match["pid"]) == pid:
            return WORKER_CLASS_ROLES.get(match["cls"])
    if not workers:
        return "threaded"
    if master_pid == pid:
        return "master"
    return None


def thread_role(name, thread_type=None, thread_class=None):
    """What a thread of a threaded-mode server does, or None.

    Request and cron threads carry Odoo's ``type`` attribute; a request
    thread only lives while its connection is open, so the HTTP service is
    also recognised by its listener thread:

    >>> thread_role("odoo.service.cron.cron0", "cron")
    'cron'
    >>> thread_role("odoo.service.http.request.140", "http"), thread_role("odoo.service.httpd")
    ('http', 'http')
    >>> thread_role("odoo.service.http.request.141", "websocket")
    'websocket'
    >>> thread_role("Thread-1", None, "QueueJobRunnerThread")
    'jobrunner'
    >>> thread_role("MainThread", None, "_MainThread") is None
    True
    """
    return thread_type or THREAD_NAME_ROLES.get(name) or THREAD_CLASS_ROLES.get(thread_class)


def classify_child(pid, cmdline, snapshot):
    """Role of a child of the master seen from a sibling, or None.

    ``snapshot`` maps role -> PIDs as the sibling inherited them from the
    master at fork time (``server.workers_http``, ``workers_cron``,
    ``jobrunner``). It can be stale, so callers only use it for children
    whose start predates their own fork.

    >>> classify_child(5, ["odoo", "gevent", "-c", "x"], {})
    'gevent'
    >>> classify_child(7, ["odoo", "-c", "x"], {"jobrunner": [7], "http": [8]})
    'jobrunner'
    >>> classify_child(9, ["odoo", "-c", "x"], {"http": [8]}) is None
    True
    """
    if "gevent" in cmdline[1:]:
        return "gevent"
    for role, pids in snapshot.items():
        if pid in pids:
            return role
    return None


def limits_for(role, config):
    """The ``limit_*`` options that apply to a process of ``role``.

    Memory limits are in MiB, times in seconds; 0 means "no limit".

    >>> conf = {"limit_time_cpu": 60, "limit_time_real": 120, "limit_time_real_cron": 0,
    ...         "limit_memory_soft": 2048 << 20, "limit_memory_hard": 2560 << 20,
    ...         "limit_memory_soft_gevent": False, "limit_memory_hard_gevent": False,
    ...         "limit_request": 65536}
    >>> limits_for("http", conf)["limit_time_real"], limits_for("cron", conf)["limit_time_real"]
    (120, 120)
    >>> limits_for("cron", dict(conf, limit_time_real_cron=300))["limit_time_real"]
    300
    >>> limits_for("jobrunner", conf)["limit_time_real"], limits_for("master", conf)["limit_request"]
    (0, 0)
    >>> limits_for("gevent", dict(conf, limit_memory_soft_gevent=1 << 30))["limit_memory_soft_mb"]
    1024
    """

    def mib(value):
        return int(value or 0) >> 20

    limits = {
        "limit_time_cpu": int(config.get("limit_time_cpu") or 0),
        "limit_time_real": int(config.get("limit_time_real") or 0),
        "limit_memory_soft_mb": mib(config.get("limit_memory_soft")),
        "limit_memory_hard_mb": mib(config.get("limit_memory_hard")),
        "limit_request": int(config.get("limit_request") or 0),
    }
    if role == "cron" and (config.get("limit_time_real_cron") or 0) > 0:
        limits["limit_time_real"] = int(config["limit_time_real_cron"])
    if role == "gevent":
        limits["limit_memory_soft_mb"] = mib(config.get("limit_memory_soft_gevent")) or limits["limit_memory_soft_mb"]
        limits["limit_memory_hard_mb"] = mib(config.get("limit_memory_hard_gevent")) or limits["limit_memory_hard_mb"]
    if role in ("master", "jobrunner", "gevent", "threaded"):
        # The watchdog and the per-request limits only apply to prefork workers.
        limits.update(limit_time_real=0, limit_time_cpu=0, limit_request=0)
    return limits


#: The server options the capacity advisor reads, as each process reports them.
SERVER_OPTIONS = (
    "workers",
    "max_cron_threads",
    "db_maxconn",
    "limit_time_real",
    "limit_time_cpu",
    "limit_memory_soft",
    "limit_memory_hard",
    "limit_request",
    "proxy_mode",
    "gevent_port",
    "async_lab_node",  # the node's name, if the configuration gives it one
)


def node_labels(names):
    """``{(host, master_pid): configured name or None}`` -> ``{(host, master_pid): label}``.

    A node is one Odoo master. Its label is the name its configuration gives
    it (``async_lab_node = ...``), else its host; a label that several nodes
    would share (two masters on one host) gets the master's PID.

    >>> labels = node_labels({("a", 10): None, ("b", 20): None, ("b", 30): None, ("c", 40): "blue"})
    >>> [labels[k] for k in sorted(labels)]
    ['a', 'b (master 20)', 'b (master 30)', 'blue']
    """
    base = {(host, master): name or host for (host, master), name in names.items()}
    uses = {}
    for label in base.values():
        uses[label] = uses.get(label, 0) + 1
    return {
        (host, master): label if uses[label] == 1 else "%s (master %s)" % (label, master)
        for (host, master), label in base.items()
    }


#: Files of the CPU quota of this process's cgroup, v2 then v1.
CGROUP_CPU_FILES = {
    "cpu_max": "/sys/fs/cgroup/cpu.max",
    "cfs_quota_us": "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",
    "cfs_period_us": "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
}


def usable_cpus(affinity, cpu_max=None, cfs_quota_us=None, cfs_period_us=None):
    r"""The cores a process may use: its CPU affinity, bounded by its cgroup's CPU quota.

    ``cpu_max`` is cgroup v2's ``cpu.max`` (``"<quota> <period>"``, quota
    ``max`` when unlimited), ``cfs_quota_us``/``cfs_period_us`` cgroup v1's
    (quota ``-1`` when unlimited), as the files hold them (None when absent).
    A quota of 1.5 CPUs keeps two cores busy part of the time: rounded up.

    >>> usable_cpus(8), usable_cpus(8, cpu_max="max 100000\n"), usable_cpus(8, cpu_max="200000 100000\n")
    (8, 8, 2)
    >>> usable_cpus(8, cpu_max="150000 100000"), usable_cpus(2, cpu_max="400000 100000")
    (2, 2)
    >>> usable_cpus(8, cfs_quota_us="300000\n", cfs_period_us="100000\n")
    3
    >>> usable_cpus(8, cfs_quota_us="-1", cfs_period_us="100000")
    8
    >>> usable_cpus(4, cpu_max="50000 100000"), usable_cpus(4, cpu_max="garbage")
    (1, 4)
    """
    quota = period = None
    try:
        if cpu_max:
            text_quota, text_period = cpu_max.split()[:2]
            if text_quota != "max":
                quota, period = int(text_quota), int(text_period)
        elif cfs_quota_us and cfs_period_us:
            quota, period = int(cfs_quota_us), int(cfs_period_us)
    except ValueError:  # unreadable: no quota known
        quota = None
    if not quota or quota < 0 or not period:
        return affinity
    return max(1, min(affinity, -(-quota // period)))


def read_cgroup_cpu(files=None):
    """The contents of :data:`CGROUP_CPU_FILES` that exist, for :func:`usable_cpus`."""
    contents = {}
    for key, path in (files or CGROUP_CPU_FILES).items():
        try:
            with open(path, encoding="ascii") as f:
                contents[key] = f.read()
        except (OSError, ValueError):
            continue
    return contents


def server_config(config, channels, cpu_count):
    """The configuration a process sees, as the heartbeat reports it.

    ``config`` is Odoo's (``odoo.tools.config``), ``channels`` the job
    runner's channel configuration as queue_job reads it (environment first),
    ``cpu_count`` the cores this process may use (:func:`usable_cpus`).

    >>> conf = {"workers": 4, "max_cron_threads": 1, "db_maxconn": 64, "server_wide_modules": "base,web,queue_job",
    ...         "limit_time_real": 120, "proxy_mode": False, "gevent_port": 8072}
    >>> seen = server_config(conf, "root:2", 2)
    >>> seen["workers"], seen["server_wide_modules"], seen["channels"], seen["cpu_count"], seen["limit_request"]
    (4, ['base', 'web', 'queue_job'], 'root:2', 2, None)
    """
    seen = {option: config.get(option) for option in SERVER_OPTIONS}
    modules = config.get("server_wide_modules") or ""
    if isinstance(modules, str):
        modules = modules.split(",")
    seen["server_wide_modules"] = [m.strip() for m in modules if m.strip()]
    seen["channels"] = channels
    seen["cpu_count"] = cpu_count
    return seen


def exit_reason(*, parent_changed, request_count, request_max, memory, memory_soft):
    """Why a prefork worker's ``check_limits`` ended its life (Odoo's order).

    >>> exit_reason(parent_changed=False, request_count=10, request_max=10, memory=1, memory_soft=2)
    'request_limit'
    >>> exit_reason(parent_changed=False, request_count=1, request_max=10, memory=3, memory_soft=2)
    'memory_limit'
    >>> exit_reason(parent_changed=True, request_count=1, request_max=10, memory=3, memory_soft=2)
    'master_gone'
    >>> exit_reason(parent_changed=False, request_count=1, request_max=10, memory=1, memory_soft=0)
    'stopped'
    """
    if parent_changed:
        return "master_gone"
    if request_count >= request_max:
        return "request_limit"
    if memory_soft and memory > memory_soft:
        return "memory_limit"
    return "stopped"


def death_reason(row, gone_at):
    """Why a process that vanished died: its own note, else the evidence.

    A worker that exits through Odoo's own paths leaves a note
    (``exit_reason``). One that vanished without a note was killed; if it
    was busy with one request for at least ``limit_time_real`` seconds,
    the master's watchdog killed it.

    >>> death_reason({"exit_reason": "memory_limit"}, 100.0)
    'memory_limit'
    >>> death_reason({"exit_reason": None, "busy_since": 10.0, "limit_time_real": 60}, 75.0)
    'time_limit_real'
    >>> death_reason({"exit_reason": None, "busy_since": 50.0, "limit_time_real": 60}, 75.0)
    'killed'
    """
    if row.get("exit_reason"):
        return row["exit_reason"]
    busy_since, limit = row.get("busy_since"), row.get("limit_time_real")
    if busy_since and limit and gone_at - busy_since >= limit - HEARTBEAT_INTERVAL:
        return "time_limit_real"
    return "killed"


def retry_delay(attempt, *, base=0.1, cap=2.0, jitter=None):
    """Seconds to wait before retry ``attempt + 1`` of a transient failure:
    exponential, capped, with up to 50 % random jitter so that processes
    that conflicted once do not meet again at the same instant.

    >>> [retry_delay(n, jitter=0.0) for n in range(6)]
    [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
    >>> retry_delay(1, jitter=1.0)
    0.3
    """
    if jitter is None:
        jitter = random.random()
    delay = min(cap, base * 2**attempt)
    return round(delay * (1 + jitter / 2), 3)


def state_for(last_seen, now, *, local_alive=None):
    """alive / stale / gone for a row last heard of at ``last_seen``.

    ``local_alive`` is the verdict of psutil when the process is on this
    host (True/False), None for a process on another host.

    >>> state_for(100, 104), state_for(100, 100 + STALE_AFTER + 1), state_for(100, 100 + GONE_AFTER + 1)
    ('alive', 'stale', 'gone')
    >>> state_for(100, 101, local_alive=False), state_for(100, 100 + STALE_AFTER + 1, local_alive=True)
    ('gone', 'stale')
    """
    if local_alive is False:
        return "gone"
    age = now - last_seen
    if age > GONE_AFTER and local_alive is None:
        return "gone"
    if age > STALE_AFTER:
        return "stale"
    return "alive"


def cpu_percent(prev, current):
    """CPU use between two samples ``(wall_time, cpu_seconds)``, in %.

    >>> cpu_percent((10.0, 1.0), (12.0, 2.5))
    75.0
    >>> cpu_percent(None, (12.0, 2.5))
    0.0
    """
    if not prev or current[0] <= prev[0]:
        return 0.0
    return round(100.0 * (current[1] - prev[1]) / (current[0] - prev[0]), 1)


def sample(proc):
    """What ``proc`` (a ``psutil.Process``) is and costs now, read in one go:
    its ``create_time``, resident memory (``rss_mb``), virtual memory
    (``vms_mb``, what Odoo's memory limits are compared with) and CPU time
    (``cpu_seconds``, user and system).

    >>> import psutil
    >>> sorted(sample(psutil.Process()))
    ['cpu_seconds', 'create_time', 'rss_mb', 'vms_mb']
    """
    with proc.oneshot():
        cpu = proc.cpu_times()
        memory = proc.memory_info()
        return {
            "create_time": proc.create_time(),
            "rss_mb": round(memory.rss / 2**20, 1),
            "vms_mb": round(memory.vms / 2**20, 1),
            "cpu_seconds": round(cpu.user + cpu.system, 2),
        }


def start_time(create_time, *, now, uptime, boot_time):
    """A process's start on the ``time.time()`` clock.

    psutil's ``create_time`` adds the process's start (in clock ticks since
    boot) to the boot time that Linux reports in *whole* seconds, so it can be
    up to one second early against ``time.time()``. Correct it with the
    precise uptime, so starts compare with heartbeats taken with time.time().

    >>> start_time(1000.25, now=5000.9, uptime=4100.5, boot_time=900.0)
    1000.65
    """
    return round(create_time + (now - uptime - boot_time), 3)


@dataclass(frozen=True)
class Respawn:
    old_id: int
    new_id: int


def pair_respawns(gone, fresh):
    """Pair each vanished process with the process that replaced it.

    A replacement has the same host, master and role, and was started after
    the vanished one was last seen alive: the master only forks it once it
    has reaped the dead one. (A sibling forked in the same spawn pass started
    before that, so it is never taken for a replacement.) Each process
    replaces at most one.
    ``gone`` and ``fresh`` are dicts with id, host, master_pid, role,
    last_seen and create_time (epoch seconds, on the same clock: see
    :func:`start_time`).

    >>> gone = [{"id": 1, "host": "h", "master_pid": 10, "role": "http", "last_seen": 100.0, "create_time": 50}]
    >>> fresh = [
    ...     {"id": 2, "host": "h", "master_pid": 10, "role": "cron", "create_time": 101.0},
    ...     {"id": 3, "host": "h", "master_pid": 10, "role": "http", "create_time": 20.0},
    ...     {"id": 4, "host": "h", "master_pid": 10, "role": "http", "create_time": 103.0},
    ... ]
    >>> pair_respawns(gone, fresh)
    [Respawn(old_id=1, new_id=4)]
    >>> pair_respawns(gone, [dict(fresh[2], master_pid=11)])
    []

    A sibling started with the vanished one, before it was last seen alive:

    >>> pair_respawns(gone, [dict(fresh[2], create_time=60.0)])
    []

    A replacement that vanished in its turn before anyone paired them (its
    row is in both lists) replaced the first; its own replacement, the second:

    >>> first = dict(gone[0], id=1, last_seen=44.0)
    >>> second = {"id": 5, "host": "h", "master_pid": 10, "role": "http", "create_time": 45.0, "last_seen": 46.0}
    >>> third = {"id": 6, "host": "h", "master_pid": 10, "role": "http", "create_time": 47.0}
    >>> pair_respawns([first, second], [second, third])
    [Respawn(old_id=1, new_id=5), Respawn(old_id=5, new_id=6)]
    """
    taken = set()
    pairs = []
    for old in sorted(gone, key=lambda r: r["last_seen"]):
        candidates = [
            new
            for new in fresh
            if new["id"] not in taken
            and (new["host"], new["master_pid"], new["role"]) == (old["host"], old["master_pid"], old["role"])
            and new["create_time"] > old["last_seen"]
        ]
        if candidates:
            new = min(candidates, key=lambda r: r["create_time"])
            taken.add(new["id"])
            pairs.append(Respawn(old["id"], new["id"]))
    return pairs
