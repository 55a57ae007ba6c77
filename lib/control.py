# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Server controls: which signal an action sends, to whom, and when it is refused.

Pure functions: the processes are passed in as plain dicts (what psutil says
of them at the moment of acting), so every refusal is testable without a
server. The model (``models/async_lab_control.py``) records the actions, and
the node that owns the process carries them out (``_carry_out``).

An action never reaches a process that is not, right now, a forked child of
the node's Odoo master: same PID *and* create time as the registry recorded
(a reused PID is another process), parent PID the master's, the master's
command line (a fork keeps it; the websocket process and any other program
have their own; with the optional ``setproctitle`` package installed, Odoo
renames each worker ``odoo: WorkerHTTP <pid>``, which names its own PID),
never the master itself.
"""

import re
import signal

import psutil

from .processes import WORKER_CLASS_ROLES

#: action -> (label, what it needs: "pid", "node" or "burst").
ACTIONS = {
    "add_http_worker": ("Add an HTTP worker", "node"),
    "remove_http_worker": ("Remove an HTTP worker", "node"),
    "recycle": ("Recycle (finish the request, then be replaced)", "pid"),
    "kill": ("Kill (SIGKILL: the master respawns it)", "pid"),
    # A burst's jobs: done at once in the database, by whichever node takes the request.
    "requeue_jobs": ("Requeue a burst's failed and cancelled jobs", "burst"),
    "cancel_jobs": ("Cancel a burst's jobs still to run", "burst"),
}
#: Actions on a burst's jobs (no process is signalled).
BURST_ACTIONS = tuple(action for action, (_label, needs) in ACTIONS.items() if needs == "burst")
#: Roles a recycle or a kill may target: the master forks them again.
TARGET_ROLES = ("http", "cron")
#: Signal of each action, and to whom it goes.
SIGNALS = {
    "add_http_worker": ("master", signal.SIGTTIN),
    "remove_http_worker": ("master", signal.SIGTTOU),  # then SIGINT to one HTTP worker
    "recycle": ("process", signal.SIGINT),
    "kill": ("process", signal.SIGKILL),
}
#: Seconds a pending action waits for its node; then it expires.
PENDING_TIMEOUT = 60
#: A create time is the same within this (psutil's float from /proc).
CREATE_TIME_TOLERANCE = 0.01


#: The title Odoo gives a worker when ``setproctitle`` is installed
#: (``odoo/service/server.py``, ``Worker.setproctitle``): its class and PID.
WORKER_TITLE = re.compile(r"^odoo: (Worker\w+) (\d+)(?:\s|$)")


class Refused(Exception):
    """The action may not be carried out; the message says why."""


def refusal(check, *args, **kwargs):
    """The message of the :class:`Refused` that ``check`` raises, or None (doctests).

    >>> refusal(population_after, "remove_http_worker", 1, 2, 2)
    'the node runs 1 HTTP worker: it keeps at least one'
    """
    try:
        check(*args, **kwargs)
    except Refused as exc:
        return str(exc)
    return None


def population_after(action, population, configured, max_extra):
    """The HTTP worker count after ``action``, or :class:`Refused` past a cap.

    Never fewer than 1, never more than ``configured + max_extra``.

    >>> population_after("add_http_worker", 2, 2, 2), population_after("remove_http_worker", 2, 2, 2)
    (3, 1)
    >>> refusal(population_after, "add_http_worker", 4, 2, 2)
    'the node already runs 4 HTTP workers, its configured 2 plus the 2 more allowed'
    >>> refusal(population_after, "remove_http_worker", 1, 2, 2)
    'the node runs 1 HTTP worker: it keeps at least one'
    >>> population_after("recycle", 3, 2, 2)
    3
    """
    if action == "add_http_worker":
        if population + 1 > configured + max_extra:
            raise Refused(
                "the node already runs %d HTTP workers, its configured %d plus the %d more allowed"
                % (population, configured, max_extra)
            )
        return population + 1
    if action == "remove_http_worker":
        if population - 1 < 1:
            raise Refused("the node runs %d HTTP worker: it keeps at least one" % population)
        return population - 1
    return population


def worker_title(cmdline):
    """``(class name, PID)`` of a worker that Odoo renamed with setproctitle, or None.

    >>> worker_title(["odoo: WorkerHTTP 4242 "]), worker_title(["odoo: WorkerCron 7 mydb"])
    (('WorkerHTTP', 4242), ('WorkerCron', 7))
    >>> worker_title(["odoo-bin", "-c", "odoo.conf"]) is None
    True
    """
    match = WORKER_TITLE.match(" ".join(cmdline or ()))
    return match and (match.group(1), int(match.group(2)))


def runs_master_code(proc, master_cmdline):
    """Whether ``proc`` (``{"pid", "cmdline"}``) looks like a fork of the master:
    the master's command line, or Odoo's worker title naming its own PID.

    >>> argv = ["odoo-bin", "-c", "x"]
    >>> runs_master_code({"pid": 11, "cmdline": argv}, argv)
    True
    >>> runs_master_code({"pid": 11, "cmdline": ["odoo: WorkerHTTP 11 "]}, argv)
    True
    >>> runs_master_code({"pid": 11, "cmdline": ["odoo: WorkerHTTP 12 "]}, argv)
    False
    >>> runs_master_code({"pid": 11, "cmdline": ["sleep", "60"]}, argv)
    False
    """
    if proc["cmdline"] == master_cmdline:
        return True
    title = worker_title(proc["cmdline"])
    return bool(title) and title[0] in WORKER_CLASS_ROLES and title[1] == proc["pid"]


def was_removed(pid, create_time, removed):
    """Whether the process ``(pid, create_time)`` is one that a removal told to stop.

    >>> was_removed(11, 6.0, [(11, 6.001)]), was_removed(11, 9.0, [(11, 6.0)])
    (True, False)
    """
    return any(p == pid and abs(c - create_time) <= CREATE_TIME_TOLERANCE for p, c in removed)


def http_workers_now(children, master, registered, removed=()):
    """``(surely, at_most)``: the HTTP workers among ``master``'s children right now.

    ``children`` are :func:`describe` dicts of the master's children;
    ``registered`` lists ``(pid, create_time, role)`` of the registry's live
    rows of this node; ``removed`` the ``(pid, create_time)`` that removals
    told to stop (the master no longer counts them, though they may still
    finish a request). A recycled or killed worker still counts: the master
    replaces it. A child
    whose role is neither in its title nor in the registry yet (forked a
    moment ago) may be an HTTP worker: it counts in ``at_most`` only. The
    floor of one HTTP worker is checked on ``surely``, the cap on ``at_most``:
    both err on the safe side.

    >>> master = {"pid": 10, "cmdline": ["odoo"]}
    >>> kids = [{"pid": p, "create_time": float(p), "status": "sleeping", "cmdline": ["odoo"]} for p in (11, 12, 13)]
    >>> kids.append({"pid": 14, "create_time": 14.0, "status": "sleeping", "cmdline": ["odoo", "gevent"]})
    >>> http_workers_now(kids, master, [(11, 11.0, "http"), (12, 12.0, "cron")])
    (1, 2)
    >>> http_workers_now(kids, master, [(11, 11.0, "http"), (12, 12.0, "cron")], removed=[(11, 11.0)])
    (0, 1)
    >>> titled = [dict(kids[0], cmdline=["odoo: WorkerHTTP 11 "]), dict(kids[1], cmdline=["odoo: WorkerCron 12 db"])]
    >>> http_workers_now(titled, master, [])
    (1, 1)
    """
    known = {pid: (create_time, role) for pid, create_time, role in registered}
    surely = at_most = 0
    for child in children:
        if not child or child.get("status") == "zombie" or was_removed(child["pid"], child["create_time"], removed):
            continue
        if not runs_master_code(child, master["cmdline"]):
            continue  # the websocket (gevent) process, or another program
        title = worker_title(child["cmdline"])
        role = WORKER_CLASS_ROLES.get(title[0]) if title else None
        if role is None and child["pid"] in known:
            create_time, registered_role = known[child["pid"]]
            if abs(create_time - child["create_time"]) <= CREATE_TIME_TOLERANCE:
                role = registered_role
        if role == "http":
            surely += 1
        if role in ("http", None):
            at_most += 1
    return surely, at_most


def check_master(master, *, expected_pid, expected_create_time, own_parent, own_cmdline, own_pid=None):
    """Refuse unless ``master`` is the recorded master, alive, and the parent of the acting process.

    ``master`` is ``{"pid", "create_time", "status", "cmdline"}`` (psutil), or None if gone.
    A child of the master shares its command line (fork without exec), or
    carries Odoo's worker title with its own PID (``own_pid``).

    >>> m = {"pid": 10, "create_time": 5.0, "status": "sleeping", "cmdline": ["odoo", "-c", "x"]}
    >>> argv = ["odoo", "-c", "x"]
    >>> check_master(m, expected_pid=10, expected_create_time=5.0, own_parent=10, own_cmdline=argv)
    >>> refusal(check_master, m, expected_pid=10, expected_create_time=6.0, own_parent=10, own_cmdline=argv)
    'master 10 is not the recorded one (another start time): its PID was reused'
    >>> refusal(check_master, m, expected_pid=10, expected_create_time=5.0, own_parent=1, own_cmdline=argv)
    'master 10 is not the master of the process acting (its parent is 1)'
    """
    pid = expected_pid
    if master is None or master.get("status") == "zombie":
        raise Refused("master %s is not running" % pid)
    if abs(master["create_time"] - (expected_create_time or 0)) > CREATE_TIME_TOLERANCE:
        raise Refused("master %s is not the recorded one (another start time): its PID was reused" % pid)
    if own_parent != pid:
        raise Refused("master %s is not the master of the process acting (its parent is %s)" % (pid, own_parent))
    if not runs_master_code({"pid": own_pid, "cmdline": own_cmdline}, master["cmdline"]):
        raise Refused("master %s does not run this Odoo server's command line" % pid)


def check_target(target, *, expected_pid, expected_create_time, master):
    """Refuse unless ``target`` is, now, the recorded process and a forked child of ``master``.

    ``target`` and ``master`` are ``{"pid", "ppid", "create_time", "status", "cmdline"}``
    (``target`` None if no such PID).

    >>> master = {"pid": 10, "ppid": 1, "create_time": 5.0, "status": "sleeping", "cmdline": ["odoo"]}
    >>> child = {"pid": 11, "ppid": 10, "create_time": 6.0, "status": "sleeping", "cmdline": ["odoo"]}
    >>> check_target(child, expected_pid=11, expected_create_time=6.0, master=master)
    >>> refusal(check_target, master, expected_pid=10, expected_create_time=5.0, master=master)
    'PID 10 is the master itself'
    >>> refusal(check_target, dict(child, create_time=7.0), expected_pid=11, expected_create_time=6.0, master=master)
    'PID 11 is not the recorded process (another start time): the PID was reused'
    >>> refusal(check_target, dict(child, ppid=1), expected_pid=11, expected_create_time=6.0, master=master)
    'PID 11 is not a child of master 10 (its parent is 1)'
    >>> sleep = dict(child, cmdline=["sleep", "60"])
    >>> refusal(check_target, sleep, expected_pid=11, expected_create_time=6.0, master=master)
    "PID 11 does not run the master's command line: not a forked Odoo worker"
    """
    if expected_pid == master["pid"]:
        raise Refused("PID %s is the master itself" % expected_pid)
    if target is None or target.get("status") == "zombie":
        raise Refused("PID %s is not running" % expected_pid)
    if abs(target["create_time"] - (expected_create_time or 0)) > CREATE_TIME_TOLERANCE:
        raise Refused("PID %s is not the recorded process (another start time): the PID was reused" % expected_pid)
    if target["ppid"] != master["pid"]:
        raise Refused(
            "PID %s is not a child of master %s (its parent is %s)" % (expected_pid, master["pid"], target["ppid"])
        )
    if not runs_master_code(target, master["cmdline"]):
        raise Refused("PID %s does not run the master's command line: not a forked Odoo worker" % expected_pid)


def describe(proc):
    """psutil.Process -> the dict the checks read, or None if it is gone.

    >>> import os, psutil
    >>> describe(psutil.Process(os.getpid()))["pid"] == os.getpid()
    True
    """
    try:
        with proc.oneshot():
            return {
                "pid": proc.pid,
                "ppid": proc.ppid(),
                "create_time": proc.create_time(),
                "status": proc.status(),
                "cmdline": proc.cmdline(),
            }
    except psutil.Error:
        return None
