# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Shape the dashboard's process map and swimlanes from plain rows.

The model (``async_lab.dashboard``) reads the rows; this module only
arranges them, so every rule below is a runnable example. Times are epoch
seconds, passed in with ``now``.

A process map is a list of hosts; each host runs servers, one per master
(a threaded server is its own master); each server lists its children in
the order of :data:`ROLE_ORDER`:

>>> rows = [
...     _example_row(1, 100, "master", started=0),
...     _example_row(2, 103, "cron", started=10),
...     _example_row(3, 101, "http", started=10),
...     _example_row(4, 102, "http", started=10, state="gone", gone_at=990),
...     _example_row(5, 104, "http", started=995, replaces_id=4),
... ]
>>> respawns = [{"new_worker_id": 5, "old_pid": 102, "reason": "memory_limit", "respawned_at": 995}]
>>> (host,) = process_map(rows, respawns, now=1000)
>>> host["host"], [s["master"]["pid"] for s in host["servers"]]
('h', [100])
>>> [(c["pid"], c["role"], c["state"]) for c in host["servers"][0]["children"]]
[(101, 'http', 'alive'), (104, 'http', 'alive'), (102, 'http', 'gone'), (103, 'cron', 'alive')]
>>> new = host["servers"][0]["children"][1]
>>> new["is_new"], new["age"], new["respawn"]["old_pid"], new["respawn"]["reason"]
(True, 5, 102, 'memory_limit')
>>> gone = host["servers"][0]["children"][2]
>>> gone["gone_for"], gone["age"], gone["is_new"]
(10, 980, False)
"""

#: Display order of the roles under a master.
ROLE_ORDER = ("master", "threaded", "http", "cron", "jobrunner", "gevent")
#: Seconds a vanished process stays on the map, fading out.
GONE_VISIBLE = 120
#: Seconds the master of a node that went silent stays on the map, "stopped reporting".
SILENT_NODE_VISIBLE = 3600
#: Exit reasons of a master that stopped on its own (not silent).
MASTER_STOPS = ("server_stop", "server_reload")
#: Seconds a process counts as new (highlighted on the map).
NEW_FOR = 30
_STATE_ORDER = {"alive": 0, "stale": 1, "gone": 2}


def _example_row(id_, pid, role, *, host="h", master_pid=100, started=0.0, state="alive", gone_at=None, **extra):
    """A registry row as the model passes it in (used by the examples)."""
    return dict(
        id=id_,
        pid=pid,
        role=role,
        host=host,
        master_pid=master_pid,
        started_at=started,
        state=state,
        gone_at=gone_at,
        **extra,
    )


def role_rank(role):
    """Position of ``role`` in :data:`ROLE_ORDER` (unknown roles last).

    >>> role_rank("master"), role_rank("gevent"), role_rank(None)
    (0, 5, 6)
    """
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


def process_node(row, now, respawn=None):
    """One process as the dashboard shows it.

    ``age`` runs until the process vanished; a process is new for
    :data:`NEW_FOR` seconds after its start.

    >>> node = process_node(_example_row(1, 7, "http", started=940.4, rss_mb=80.0), now=1000)
    >>> node["age"], node["is_new"], node["gone_for"], node["rss_mb"]
    (60, False, None, 80.0)
    """
    started = row.get("started_at")
    gone = row["state"] == "gone"
    gone_at = row.get("gone_at") if gone else None
    end = gone_at or now
    return {
        "id": row["id"],
        "pid": row["pid"],
        "role": row["role"],
        "state": row["state"],
        "age": round(end - started) if started else None,
        "is_new": bool(started and not gone and now - started < NEW_FOR),
        "gone_for": round(now - gone_at) if gone_at else None,
        "exit_reason": row.get("exit_reason"),
        "rss_mb": row.get("rss_mb"),
        "cpu_percent": row.get("cpu_percent"),
        "cpu_seconds": row.get("cpu_seconds"),
        "requests": row.get("requests") or 0,
        "jobs": row.get("jobs") or 0,
        "crons": row.get("crons") or 0,
        "threads": row.get("threads"),
        "respawn": respawn,
    }


def _node_key(node):
    return (role_rank(node["role"]), _STATE_ORDER.get(node["state"], 3), node["pid"])


def process_map(rows, respawns, now):
    """Hosts -> servers (one per master) -> children, ready to draw.

    ``respawns`` are the recent rows of ``async_lab.respawn`` (``new_worker_id``,
    ``old_pid``, ``reason``, ``respawned_at``); each is attached to the
    process that replaced the vanished one. A master that is not in the rows
    (not seen yet) is stood in for, so its children still have a parent:

    >>> (host,) = process_map([_example_row(1, 101, "http")], [], now=10)
    >>> host["servers"][0]["master"]
    {'pid': 100, 'role': 'master', 'state': 'unknown', 'missing': True}

    A threaded server (``workers = 0``) is its own master, with its threads:

    >>> threaded = _example_row(1, 50, "threaded", master_pid=50, threads=[{"name": "odoo.service.cron.cron0"}])
    >>> (host,) = process_map([threaded], [], now=10)
    >>> server = host["servers"][0]
    >>> server["mode"], server["master"]["pid"], server["children"], len(server["master"]["threads"])
    ('threaded', 50, [], 1)
    """
    latest_respawn = {}
    for respawn in sorted(respawns, key=lambda r: r["respawned_at"] or 0):
        latest_respawn[respawn["new_worker_id"]] = respawn
    hosts = {}
    for data in rows:
        master_pid = data.get("master_pid") or data["pid"]
        servers = hosts.setdefault(data["host"], {})
        server = servers.setdefault(master_pid, {"master_pid": master_pid, "master": None, "children": []})
        node = process_node(data, now, latest_respawn.get(data["id"]))
        if data["pid"] == master_pid and data["role"] in ("master", "threaded"):
            # A PID can be listed twice (a restarted server reusing it): show the live one.
            if server["master"] is None or _node_key(node) < _node_key(server["master"]):
                server["master"] = node
        else:
            server["children"].append(node)
    result = []
    for host in sorted(hosts):
        servers = []
        for master_pid in sorted(hosts[host]):
            server = hosts[host][master_pid]
            master = server["master"] or {"pid": master_pid, "role": "master", "state": "unknown", "missing": True}
            children = sorted(server["children"], key=_node_key)
            servers.append(
                {
                    "master_pid": master_pid,
                    "mode": "threaded" if master["role"] == "threaded" else "prefork",
                    "master": master,
                    "children": children,
                    "alive": sum(1 for n in [master, *children] if n["state"] in ("alive", "stale")),
                }
            )
        result.append({"host": host, "servers": servers})
    return result


def annotate_nodes(hosts, labels, runner_keys):
    """Name each server of a :func:`process_map` as the node it is, in place.

    ``labels``: ``{(host, master_pid): label}`` of the nodes that report (the
    advisor's); ``runner_keys``: the ``(host, master_pid)`` whose job runner
    holds queue_job's lock. A server still on the map none of whose processes
    is alive stopped reporting: its processes are all stale, or its master is
    gone without a stop of its own (a node that vanished, shown for
    SILENT_NODE_VISIBLE).

    >>> (host,) = process_map([_example_row(1, 100, "master"), _example_row(2, 101, "http", state="stale")], [], 10)
    >>> annotate_nodes([host], {("h", 100): "blue"}, {("h", 100)})
    >>> server = host["servers"][0]
    >>> server["node"], server["holds_runner_lock"], server["stopped_reporting"]
    ('blue', True, False)
    >>> (host,) = process_map([_example_row(2, 101, "http", state="stale")], [], 10)
    >>> annotate_nodes([host], {}, set())
    >>> host["servers"][0]["node"], host["servers"][0]["stopped_reporting"]
    ('h (master 100)', True)
    >>> silent = _example_row(1, 100, "master", state="gone", exit_reason="killed")
    >>> (host,) = process_map([silent], [], 10)
    >>> annotate_nodes([host], {}, set())
    >>> host["servers"][0]["stopped_reporting"]
    True
    >>> (host,) = process_map([dict(silent, exit_reason="server_stop")], [], 10)
    >>> annotate_nodes([host], {}, set())
    >>> host["servers"][0]["stopped_reporting"]
    False
    """
    for host in hosts:
        for server in host["servers"]:
            key = (host["host"], server["master_pid"])
            processes = [server["master"], *server["children"]]
            live = [p for p in processes if p["state"] in ("alive", "stale")]
            server["node"] = labels.get(key) or "%s (master %s)" % key
            server["holds_runner_lock"] = key in runner_keys
            master = server["master"]
            vanished = master["state"] == "gone" and master.get("exit_reason") not in MASTER_STOPS
            server["stopped_reporting"] = not any(p["state"] == "alive" for p in live) and (bool(live) or vanished)


def runner_threads(rows):
    """Live threaded servers that run queue_job's runner as a thread.

    With ``workers = 0`` the runner is no process of its own, so the
    registry has no ``jobrunner`` row; its thread shows it runs:

    >>> threads = [{"name": "Thread-1", "role": "jobrunner"}, {"name": "MainThread", "role": None}]
    >>> runner_threads([
    ...     _example_row(1, 50, "threaded", master_pid=50, threads=threads),
    ...     _example_row(2, 60, "threaded", master_pid=60, threads=threads, state="gone"),
    ...     _example_row(3, 70, "threaded", master_pid=70, threads=threads[1:]),
    ... ])
    [{'pid': 50, 'host': 'h'}]
    """
    return [
        {"pid": row["pid"], "host": row["host"]}
        for row in rows
        if row["role"] == "threaded"
        and row["state"] != "gone"
        and any(thread.get("role") == "jobrunner" for thread in row.get("threads") or [])
    ]


def swimlanes(jobs, processes):
    """One lane per worker PID, each with its jobs by start time.

    ``jobs`` have ``pid`` and ``start``; ``processes`` maps a PID to its
    registry row (``role``, ``state``), when the registry knows it. Lanes
    of known roles come first, in :data:`ROLE_ORDER`, then by PID:

    >>> lanes = swimlanes(
    ...     [{"pid": 12, "start": 5}, {"pid": 11, "start": 3}, {"pid": 12, "start": 1}, {"pid": None, "start": 0}],
    ...     {11: {"role": "http", "state": "gone"}, 12: {"role": "http", "state": "alive"}},
    ... )
    >>> [(lane["pid"], lane["state"], [job["start"] for job in lane["jobs"]]) for lane in lanes]
    [(11, 'gone', [3]), (12, 'alive', [1, 5])]
    """
    lanes = {}
    for job in jobs:
        if job.get("pid"):
            lanes.setdefault(job["pid"], []).append(job)
    result = []
    for pid, lane_jobs in lanes.items():
        known = processes.get(pid) or {}
        result.append(
            {
                "pid": pid,
                "role": known.get("role"),
                "state": known.get("state", "unknown"),
                "jobs": sorted(lane_jobs, key=lambda job: job["start"]),
            }
        )
    return sorted(result, key=lambda lane: (role_rank(lane["role"]), lane["pid"]))
