# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
""" "Why isn't this job running?": the first reason that holds a job back.

The model ``queue.job`` (``async_lab_why``) gathers the facts, plain values,
and :func:`first_reason` picks the reason; the sentence shown for each code is
the model's (translated). Times are epoch seconds.

``facts``::

    job:          state, channel, eta, retry, max_retries, date_created, date_enqueued,
                  date_started, date_done, worker_pid, exc_name, exc_message, exc_info, retry_pattern
    now:          the current time
    dependencies: [{"uuid", "state"}] of the jobs it depends on
    runner:       {"alive"}: a job runner serves the database
    channel:      {"name", "capacity" (the least on its path, None if unbounded),
                   "sequential", "running" ([{"uuid", "worker_pid", "date_started", "channel"}]
                   on the channel and the ones it counts against), "blocking" (a failed
                   job of a sequential channel, or None), "p95" (run time), "ahead" (jobs
                   dispatched before it, counted up to MAX_AHEAD + 1)}
    http:         {"workers", "busy" ([{"pid", "busy_since", "job"}])}: alive HTTP workers
    worker:       {"state", "last_seen"} of the process that runs it, None if unknown
    lock_free:    no live transaction holds the job's lock (queue_job_lock)
"""

#: queue_job's runner requeues dead jobs whose date_enqueued is this old...
DEAD_JOB_AGE = 10
#: ...in its loop, which wakes on a notification or at the latest after this.
RUNNER_LOOP = 60
#: Jobs ahead of a pending job are counted up to this, and beyond it given as
#: "more than MAX_AHEAD" (``ahead_capped``): a count must not scan a huge queue.
MAX_AHEAD = 10000

CODES = (
    "done",
    "failed",
    "cancelled",
    "scheduled",
    "waiting_dependencies",
    "runner_not_alive",
    "sequential_blocked",
    "channel_full",
    "pending",
    "no_free_worker",
    "enqueued",
    "worker_gone",
    "running_long",
    "running",
)

#: The stages of a job: (name, start date, end date).
STAGES = (
    ("created_enqueued", "date_created", "date_enqueued"),
    ("enqueued_started", "date_enqueued", "date_started"),
    ("started_done", "date_started", "date_done"),
)

STAGES_NAMES = tuple(name for name, _start, _end in STAGES)


def reason(code, **data):
    assert code in CODES, code
    return {"code": code, "data": data}


def stages(job):
    """Seconds of each stage the job went through (None where a date is missing).

    >>> stages({"date_created": 0.0, "date_enqueued": 0.5, "date_started": 1.0, "date_done": 3.0})
    {'created_enqueued': 0.5, 'enqueued_started': 0.5, 'started_done': 2.0}
    """
    out = {}
    for name, start, end in STAGES:
        a, b = job.get(start), job.get(end)
        out[name] = round(max(0.0, b - a), 6) if a is not None and b is not None else None
    return out


def first_reason(facts):
    """The first reason that holds the job back, as ``{"code", "data"}``.

    >>> base = {"now": 100.0, "runner": {"alive": True}, "dependencies": [], "lock_free": False,
    ...         "channel": {"name": "root.io", "capacity": 2, "sequential": False, "running": [],
    ...                     "blocking": None, "p95": 5.0, "ahead": 0},
    ...         "http": {"workers": 3, "busy": []}, "worker": None}
    >>> def why(**job):
    ...     return first_reason(dict(base, job=dict({"state": "pending", "channel": "root.io"}, **job)))["code"]
    >>> why(eta=200.0), why(), why(state="done", date_started=1.0, date_done=2.0)
    ('scheduled', 'pending', 'done')
    >>> first_reason(dict(base, job={"state": "pending", "channel": "root.io"}, runner={"alive": False}))["code"]
    'runner_not_alive'
    """
    job, now = facts["job"], facts["now"]
    state = job["state"]
    if state == "done":
        return reason("done", stages=stages(job))
    if state == "failed":
        return _failed(job)
    if state == "cancelled":
        return reason("cancelled")
    if state == "wait_dependencies":
        waiting = [d for d in facts.get("dependencies") or [] if d["state"] != "done"]
        return reason("waiting_dependencies", dependencies=waiting)
    if state == "pending":
        return _pending(facts, job, now)
    if state == "enqueued":
        return _enqueued(facts, job, now)
    return _started(facts, job, now)


def _failed(job):
    """Failed: the last line of its exception (of the traceback, else of the message), and its retries.

    >>> tb = "Traceback (most recent call last):\\n  File x\\nValueError: value 3\\n"
    >>> _failed({"exc_name": "ValueError", "exc_info": tb, "retry": 5, "max_retries": 5})["data"]
    {'exception': 'ValueError', 'last_line': 'ValueError: value 3', 'retry': 5, 'max_retries': 5, 'retry_pattern': None}
    """
    text = job.get("exc_info") or job.get("exc_message") or ""
    lines = [line for line in text.splitlines() if line.strip()]
    return reason(
        "failed",
        exception=job.get("exc_name"),
        last_line=lines[-1].strip() if lines else None,
        retry=job.get("retry") or 0,
        max_retries=job.get("max_retries"),
        retry_pattern=job.get("retry_pattern"),
    )


def _pending(facts, job, now):
    """Pending: scheduled, no runner, a blocked sequential channel, a full channel, or next in line.

    >>> ch = {"name": "root.s", "capacity": 1, "sequential": True, "blocking": {"uuid": "f"}, "running": [], "ahead": 0}
    >>> _pending({"runner": {"alive": True}, "channel": ch}, {}, 0)["code"]
    'sequential_blocked'
    >>> ch = dict(ch, sequential=False, blocking=None, running=[{"uuid": "r", "worker_pid": 7, "date_started": 1.0}])
    >>> r = _pending({"runner": {"alive": True}, "channel": ch}, {}, 10.0)
    >>> r["code"], r["data"]["running"][0]["running_seconds"]
    ('channel_full', 9.0)
    >>> ch = dict(ch, running=[], ahead=MAX_AHEAD + 1)
    >>> r = _pending({"runner": {"alive": True}, "channel": ch}, {}, 10.0)["data"]
    >>> r["ahead"], r["ahead_capped"]
    (10000, True)
    """
    eta = job.get("eta")
    if eta is not None and eta > now:
        return reason("scheduled", eta=eta, in_seconds=round(eta - now, 1))
    if not facts["runner"].get("alive"):
        return reason("runner_not_alive")
    channel = facts["channel"]
    if channel.get("sequential") and channel.get("blocking"):
        return reason("sequential_blocked", channel=channel["name"], blocking=channel["blocking"])
    running = channel.get("running") or []  # the first few, to show
    count = channel.get("running_count", len(running))
    capacity = channel.get("capacity")
    if capacity is not None and count >= capacity:
        occupied = [
            dict(r, running_seconds=round(now - r["date_started"], 1) if r.get("date_started") is not None else None)
            for r in running
        ]
        return reason("channel_full", channel=channel["name"], capacity=capacity, running=occupied, running_count=count)
    ahead = channel.get("ahead") or 0
    return reason(
        "pending",
        channel=channel["name"],
        ahead=min(ahead, MAX_AHEAD),
        ahead_capped=ahead > MAX_AHEAD,
        capacity=capacity,
    )


def _enqueued(facts, job, now):
    """Enqueued: handed to a worker, unless no runner lives or no HTTP worker is free.

    >>> http = {"workers": 2, "busy": [{"pid": 1, "busy_since": 0.0, "job": "a"}, {"pid": 2, "busy_since": 5.0}]}
    >>> facts = {"runner": {"alive": True}, "http": http, "lock_free": False}
    >>> r = _enqueued(facts, {"date_enqueued": 8.0}, 10.0)
    >>> r["code"], r["data"]["busy_with_jobs"]
    ('no_free_worker', 1)
    >>> _enqueued(dict(facts, http={"workers": 2, "busy": []}), {"date_enqueued": 8.0}, 10.0)["code"]
    'enqueued'
    """
    since = round(now - job["date_enqueued"], 1) if job.get("date_enqueued") is not None else None
    if not facts["runner"].get("alive"):
        return reason("runner_not_alive", enqueued_seconds=since)
    http = facts.get("http") or {}
    busy = http.get("busy") or []
    if http.get("workers") and len(busy) >= http["workers"]:
        return reason(
            "no_free_worker",
            workers=http["workers"],
            busy=busy,
            busy_with_jobs=sum(1 for b in busy if b.get("job")),
            enqueued_seconds=since,
        )
    requeue = _requeue_in(facts, job, now) if facts.get("lock_free") else None
    return reason("enqueued", enqueued_seconds=since, requeued_within=requeue)


def _requeue_in(facts, job, now):
    """Seconds within which queue_job's runner requeues a dead job (its lock is free)."""
    enqueued = job["date_enqueued"] if job.get("date_enqueued") is not None else now
    return round(max(0.0, enqueued + DEAD_JOB_AGE - now) + RUNNER_LOOP, 1)


def _started(facts, job, now):
    """Started: on a process the map knows is gone, running long, or running.

    >>> base = {"channel": {"p95": 5.0}, "lock_free": True}
    >>> job = {"worker_pid": 42, "date_started": 0.0, "date_enqueued": 0.0, "retry": 0, "max_retries": 5}
    >>> r = _started(dict(base, worker={"state": "gone", "last_seen": 3.0}), job, 20.0)
    >>> r["code"], r["data"]["requeued_within"], r["data"]["then"]
    ('worker_gone', 60.0, 'pending')
    >>> _started(dict(base, worker={"state": "alive"}), job, 20.0)["code"]
    'running_long'
    >>> _started(dict(base, worker={"state": "alive"}), job, 2.0)["code"]
    'running'
    """
    running = round(now - job["date_started"], 1) if job.get("date_started") is not None else None
    worker = facts.get("worker") or {}
    if worker.get("state") == "gone" or (worker.get("state") is None and facts.get("lock_free")):
        retry, max_retries = (job.get("retry") or 0) + 1, job.get("max_retries")
        return reason(
            "worker_gone",
            worker_pid=job.get("worker_pid"),
            last_seen=worker.get("last_seen"),
            lock_free=bool(facts.get("lock_free")),
            requeued_within=_requeue_in(facts, job, now) if facts.get("lock_free") else None,
            retry=retry,
            then="failed" if max_retries and retry > max_retries else "pending",
        )
    p95 = (facts.get("channel") or {}).get("p95")
    if p95 is not None and running is not None and running > p95:
        return reason("running_long", worker_pid=job.get("worker_pid"), running_seconds=running, p95=p95)
    return reason("running", worker_pid=job.get("worker_pid"), running_seconds=running, p95=p95)
