# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The JSON API of ``main.py``, described in OpenAPI 3 (served at ``/async_lab/openapi.json``).

Kept beside the routes, and built from the same constants, so that the
bounds it states are the ones the routes enforce. ``tests/test_fuzz.py``
checks that every route of the addon is described here, and the integration
test runs schemathesis against a live server with it.
"""

from ..lib import control, impact, strategies, why, workloads
from ..lib.catalogue import CHANNELS
from ..models.async_lab_advisor import MAX_ADVICE_WINDOW
from ..models.async_lab_burst import MAX_JOBS, MAX_PRIORITY
from ..models.async_lab_control import MAX_PID
from ..models.async_lab_stats import MAX_WINDOW

ERROR_CODES = {
    "400": "Bad input (the message names it).",
    "401": "No session (or, for /async_lab/io, no valid self-call token).",
    "403": "The caller lacks the group the route needs.",
    "404": "No such Async Lab job, server control, node or process.",
    "409": "Conflict (the burst is already running, or the server control is refused: the message says why).",
    "413": "The body is larger than the limit.",
    "415": "The body is not application/json.",
    "429": "Too many load calls of this user at once.",
}


def _ref(name):
    return {"$ref": "#/components/schemas/%s" % name}


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _operation(summary, ok_status, ok_schema, errors, *, parameters=(), body=None, security_note=""):
    responses = {ok_status: dict(description=summary, **_json(ok_schema))}
    for status in errors:
        responses[status] = dict(description=ERROR_CODES[status], **_json(_ref("Error")))
    operation = {
        "summary": summary,
        "description": security_note,
        "parameters": list(parameters),
        "responses": responses,
    }
    if body:
        operation["requestBody"] = dict(required=True, **_json(body))
    return operation


def _metrics_operation(errors):
    summary = "Prometheus metrics: jobs and stage latencies by channel, processes, respawns, runner, findings"
    operation = _operation(
        summary,
        "200",
        {"type": "string"},
        errors,
        security_note="An Odoo session, or an Odoo API key of an Async Lab / User as `Authorization: Bearer <key>` "
        "(Preferences → Account Security). Prometheus's text format 0.0.4.",
    )
    operation["responses"]["200"] = {"description": summary, "content": {"text/plain": {"schema": {"type": "string"}}}}
    return operation


def _int_query(name, minimum, maximum, description):
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


def _workload_params():
    names = sorted({param.name for spec in workloads.WORKLOADS.values() for param in spec.params})
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: {"type": "integer"} for name in names},
    }


def spec(max_io_ms=5000):
    """The OpenAPI 3 document (a plain dict)."""
    nullable_int = {"type": "integer", "nullable": True}
    nullable_str = {"type": "string", "nullable": True}
    schemas = {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
        "Whoami": {
            "type": "object",
            "required": ["pid", "master_pid", "host", "role", "thread", "db", "uid", "mode"],
            "properties": {
                "pid": {"type": "integer"},
                "master_pid": nullable_int,
                "host": {"type": "string"},
                "role": {"type": "string"},
                "thread": {"type": "string"},
                "db": {"type": "string"},
                "uid": {"type": "integer"},
                "mode": {"type": "string"},
            },
        },
        "JobsRequest": {
            "type": "object",
            "required": ["workload"],
            "additionalProperties": False,
            "properties": {
                "workload": {"type": "string", "enum": list(workloads.WORKLOADS)},
                "params": _workload_params(),
                "count": {"type": "integer", "minimum": 1, "maximum": MAX_JOBS},
                "channel": {"type": "string", "enum": [name for name, _label in CHANNELS]},
                "priority": {"type": "integer", "minimum": 0, "maximum": MAX_PRIORITY},
            },
        },
        "JobsCreated": {
            "type": "object",
            "required": ["burst_id", "job_uuids", "status_url", "status_urls"],
            "properties": {
                "burst_id": {"type": "integer"},
                "job_uuids": {"type": "array", "items": {"type": "string"}},
                "status_url": {"type": "string"},
                "status_urls": {"type": "array", "items": {"type": "string"}},
            },
        },
        "Job": {
            "type": "object",
            "required": ["uuid", "state", "channel", "burst_id"],
            "properties": {
                "uuid": {"type": "string"},
                "state": {"type": "string"},
                "channel": {"type": "string"},
                "priority": nullable_int,
                "retry": {"type": "integer"},
                "max_retries": nullable_int,
                "worker_pid": nullable_int,
                "result": nullable_str,
                "exc_name": nullable_str,
                "exc_message": nullable_str,
                "burst_id": {"type": "integer"},
                **{
                    name: dict(nullable_str, format="date-time")
                    for name in ("date_created", "date_enqueued", "date_started", "date_done", "date_cancelled", "eta")
                },
            },
        },
        "Stats": {
            "type": "object",
            "required": ["generated_at", "window_minutes", "latency_method", "channels", "totals", "series", "runner"],
            "properties": {
                "generated_at": {"type": "string"},
                "window_minutes": {"type": "integer"},
                "latency_method": {"type": "string", "enum": ["exact", "histogram"]},
                "channels": {"type": "array", "items": {"type": "object"}},
                "totals": {"type": "object"},
                "series": {
                    "type": "object",
                    "required": ["minutes", "step_minutes", "channels"],
                    "properties": {
                        "minutes": {"type": "array", "items": {"type": "string"}},
                        "step_minutes": {"type": "integer"},
                        "channels": {"type": "object"},
                    },
                },
                "runner": {"type": "object"},
            },
        },
        "Why": {
            "type": "object",
            "required": ["uuid", "state", "code", "message", "data"],
            "properties": {
                "uuid": {"type": "string"},
                "state": {"type": "string"},
                "code": {"type": "string", "enum": list(why.CODES)},
                "message": {"type": "string"},
                "data": {"type": "object"},
            },
        },
        "ImpactRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "workload": {"type": "string", "enum": list(workloads.WORKLOADS)},
                "params": _workload_params(),
                "tasks": {"type": "integer", "minimum": 1, "maximum": strategies.MAX_TASKS},
                "channel": {"type": "string", "enum": [name for name, _label in CHANNELS]},
                "rate": {"type": "integer", "minimum": 1, "maximum": impact.MAX_RATE},
            },
        },
        "ImpactCreated": {
            "type": "object",
            "required": ["experiment_id", "status_url"],
            "properties": {"experiment_id": {"type": "integer"}, "status_url": {"type": "string"}},
        },
        "Impact": {
            "type": "object",
            "required": ["id", "state", "impact"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "state": {"type": "string"},
                "error": {"type": "string", "nullable": True},
                "started_at": {"type": "string", "nullable": True},
                "finished_at": {"type": "string", "nullable": True},
                "impact": {"type": "object", "nullable": True},
            },
        },
        "ControlRequest": {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"type": "string", "enum": list(control.ACTIONS)},
                "node": {
                    "type": "string",
                    "description": "The node (one Odoo master) as the dashboard names it: required to add or "
                    "remove an HTTP worker",
                },
                "pid": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PID,
                    "description": "The HTTP or cron worker to recycle or kill",
                },
                "burst_id": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2**31 - 1,
                    "description": "The burst whose jobs to requeue (failed and cancelled ones) or cancel (those "
                    "still to run): done at once, the status is done",
                },
            },
        },
        "ControlCreated": {
            "type": "object",
            "required": ["id", "status_url"],
            "properties": {"id": {"type": "integer"}, "status_url": {"type": "string"}},
        },
        "Control": {
            "type": "object",
            "required": ["id", "action", "state", "node", "host", "master_pid", "pid", "result", "error"],
            "properties": {
                "id": {"type": "integer"},
                "action": {"type": "string", "enum": list(control.ACTIONS)},
                "state": {"type": "string", "enum": ["pending", "running", "done", "refused", "failed", "expired"]},
                "node": nullable_str,
                "host": nullable_str,
                "master_pid": nullable_int,
                "pid": nullable_int,
                "burst_id": nullable_int,
                "job_count": nullable_int,
                "requested_by": nullable_str,
                "requested_at": nullable_str,
                "started_at": nullable_str,
                "done_at": nullable_str,
                "executed_by_pid": nullable_int,
                "result": nullable_str,
                "error": nullable_str,
                "respawn": {"type": "object", "nullable": True},
            },
        },
        "Advice": {
            "type": "object",
            "required": ["generated_at", "window_minutes", "hosts", "findings", "checked"],
            "properties": {
                "generated_at": {"type": "string"},
                "window_minutes": {"type": "integer"},
                "hosts": {"type": "array", "items": {"type": "object"}},
                "measured": {"type": "object"},
                "findings": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["code", "severity", "title", "evidence", "fix", "host"],
                        "properties": {
                            "code": {"type": "string"},
                            "severity": {"type": "string", "enum": ["critical", "warning", "info"]},
                            "title": {"type": "string"},
                            "evidence": {"type": "object"},
                            "fix": {"type": "string"},
                            "host": {"type": "string", "nullable": True},
                        },
                    },
                },
                "checked": {"type": "array", "items": {"type": "string"}},
            },
        },
        "RunRequest": {
            "type": "object",
            "required": ["workload", "strategy"],
            "additionalProperties": False,
            "properties": {
                "workload": {"type": "string", "enum": list(workloads.WORKLOADS)},
                "params": _workload_params(),
                "strategy": {"type": "string", "enum": list(strategies.LOCAL_STRATEGIES)},
                "tasks": {"type": "integer", "minimum": 1, "maximum": strategies.MAX_TASKS},
            },
        },
        "RunResult": {
            "type": "object",
            "required": ["strategy", "served_by_pid", "request_seconds"],
            "properties": {
                "strategy": {"type": "string"},
                "served_by_pid": {"type": "integer"},
                "request_seconds": {"type": "number"},
            },
        },
        "Io": {
            "type": "object",
            "required": ["pid", "ms", "elapsed_ms"],
            "properties": {"pid": {"type": "integer"}, "ms": {"type": "integer"}, "elapsed_ms": {"type": "number"}},
        },
        "Cpu": {
            "type": "object",
            "required": ["pid", "n", "result", "elapsed_ms"],
            "properties": {
                "pid": {"type": "integer"},
                "n": {"type": "integer"},
                "result": {"type": "integer"},
                "elapsed_ms": {"type": "number"},
            },
        },
    }
    read = ("400", "401", "403")
    load = ("400", "401", "403", "429")
    cpu_n = workloads.WORKLOADS["cpu_python"].params[0]
    paths = {
        "/async_lab/whoami": {
            "get": _operation("The process and thread that served this call", "200", _ref("Whoami"), read)
        },
        "/async_lab/jobs": {
            "post": _operation(
                "Enqueue a burst of jobs; poll their status URLs",
                "202",
                _ref("JobsCreated"),
                ("400", "401", "403", "409", "413", "415"),
                body=_ref("JobsRequest"),
                security_note="Async Lab / Manager: creates load.",
            )
        },
        "/async_lab/jobs/{uuid}": {
            "get": _operation(
                "One job of a burst",
                "200",
                _ref("Job"),
                read + ("404",),
                parameters=[{"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}],
            )
        },
        "/async_lab/jobs/{uuid}/why": {
            "get": _operation(
                "Why isn't this job running? The first reason that holds it back (any job the caller may read)",
                "200",
                _ref("Why"),
                read + ("404",),
                parameters=[{"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}}],
                security_note="Async Lab / User (the lab's jobs), or Job Queue Manager (every job). Other jobs "
                "that the answer names (running, busy, dependencies, blocking) are the ones the caller may read; "
                "the others are only counted (others).",
            )
        },
        "/async_lab/stats": {
            "get": _operation(
                "Job statistics by channel over the last `window` minutes (up to a week). Up to 60 minutes, "
                "every figure is exact (latency_method exact); beyond, counts and series are exact and read from "
                "the rollups, and the latency percentiles come from histograms: each lies in its channel's "
                "latency_bounds, the bucket that holds it (latency_method histogram)",
                "200",
                _ref("Stats"),
                read,
                parameters=[_int_query("window", 1, MAX_WINDOW, "minutes")],
            )
        },
        "/async_lab/advice": {
            "get": _operation(
                "Capacity advisor: findings on each node's configuration and the load of the last `window` minutes, "
                "worst first",
                "200",
                _ref("Advice"),
                read,
                parameters=[_int_query("window", 1, MAX_ADVICE_WINDOW, "minutes")],
            )
        },
        "/async_lab/impact": {
            "post": _operation(
                "Measure what a burst of jobs costs interactive users: a probe at rest, then during the burst",
                "202",
                _ref("ImpactCreated"),
                ("400", "401", "403", "409", "413", "415", "429"),
                body=_ref("ImpactRequest"),
                security_note="Async Lab / Manager: creates load.",
            )
        },
        "/async_lab/impact/{experiment_id}": {
            "get": _operation(
                "A user-impact run: its state, and the probe's p50/p95 at rest and during the burst",
                "200",
                _ref("Impact"),
                read + ("404",),
                parameters=[
                    {
                        "name": "experiment_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    }
                ],
            )
        },
        "/async_lab/control": {
            "post": _operation(
                "Signal a node's master or one of its workers: add or remove an HTTP worker, recycle or kill a "
                "worker. The node that owns the process carries it out within seconds; poll the status URL. "
                "Or requeue or cancel a burst's jobs, done at once",
                "202",
                _ref("ControlCreated"),
                ("400", "401", "403", "404", "409", "413", "415"),
                body=_ref("ControlRequest"),
                security_note="Async Lab / Manager. Only HTTP and cron workers that the registry knows as children "
                "of a live master of this database, checked again when acting; never a master.",
            )
        },
        "/async_lab/control/{control_id}": {
            "get": _operation(
                "A server control: its state (pending, running, done, refused, failed, expired) and result",
                "200",
                _ref("Control"),
                read + ("404",),
                parameters=[
                    {
                        "name": "control_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                    }
                ],
            )
        },
        "/async_lab/run": {
            "post": _operation(
                "Run N tasks inside this request with one strategy",
                "200",
                _ref("RunResult"),
                ("400", "401", "403", "413", "415"),
                body=_ref("RunRequest"),
                security_note="Async Lab / Manager: creates load, bounded by the worker's time limits.",
            )
        },
        "/async_lab/io": {
            "get": _operation(
                "Sleep `ms` milliseconds, then answer",
                "200",
                _ref("Io"),
                load,
                parameters=[_int_query("ms", 1, max_io_ms, "milliseconds")],
                security_note="Async Lab / Manager, or a self-call of io_http signed in the X-Async-Lab-Token header. "
                "Limited per user (429).",
            )
        },
        "/async_lab/cpu": {
            "get": _operation(
                "A pure-Python loop of `n` iterations (at most a few seconds on this machine)",
                "200",
                _ref("Cpu"),
                load,
                parameters=[
                    _int_query(
                        "n",
                        cpu_n.minimum,
                        cpu_n.maximum,
                        "iterations (default %d; fewer than a few seconds' worth on this machine)" % cpu_n.default,
                    )
                ],
                security_note="Async Lab / Manager. Limited per user (429).",
            )
        },
        "/async_lab/metrics": {"get": _metrics_operation(read)},
        "/async_lab/openapi.json": {"get": _operation("This description", "200", {"type": "object"}, read)},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Async Lab",
            "version": "1.0",
            "description": "Every route needs an Odoo session (cookie) of a user with the Async Lab / User "
            'group, unless it says otherwise. Errors are {"error": {"code", "message"}}.',
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
