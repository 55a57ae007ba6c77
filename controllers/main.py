# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Async Lab's JSON API.

Routes stay thin: parse and bound the input, call one model method, return a
dict. Every error is a 4xx JSON body ``{"error": {"code", "message"}}``.

=======  ==========================  ==========================================
method   route                       what
=======  ==========================  ==========================================
GET      /async_lab/whoami           the process and thread serving the call
POST     /async_lab/jobs             enqueue a burst; 202 and poll (background)
GET      /async_lab/jobs/<uuid>      one job of a burst
GET      /async_lab/stats            the stats payload (``async_lab.stats``)
POST     /async_lab/run              run N tasks in the request; 200 (await)
GET      /async_lab/io?ms=           sleep, then answer (load-test target)
GET      /async_lab/cpu?n=           a pure-Python loop (load-test target)
=======  ==========================  ==========================================
"""

import functools
import json
import logging
import os
import socket
import threading
import time

from odoo import http
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request

from ..lib import tokens, workloads
from ..models.async_lab_burst import BurstRunning, TooManyLabJobs
from ..models.async_lab_stats import DEFAULT_WINDOW, MAX_WINDOW
from ..process_tracker import current_role, master_pid, server_mode

_logger = logging.getLogger(__name__)

GROUP_USER = "async_lab.async_lab_group_user"
GROUP_MANAGER = "async_lab.async_lab_group_manager"
MAX_BODY_BYTES = 64 * 1024
JOB_FIELDS = ("uuid", "state", "channel", "priority", "retry", "max_retries", "worker_pid", "result",
              "exc_name", "exc_message")  # fmt: skip
JOB_DATES = ("date_created", "date_enqueued", "date_started", "date_done", "date_cancelled", "eta")


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status, code, message):
    return request.make_json_response({"error": {"code": code, "message": message}}, status=status)


def api_route(route, *, methods, auth="user", group=GROUP_USER, **kw):
    """An http route answering JSON, whose errors are 4xx JSON, never a 500.

    On any error the transaction is rolled back, so bad input loses nothing
    and writes nothing.
    """

    def decorator(func):
        @http.route(route, type="http", auth=auth, methods=methods, csrf=False, save_session=False, **kw)
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            try:
                if group and not request.env.user.has_group(group):
                    raise ApiError(403, "forbidden", "This needs the %s group." % request.env.ref(group).full_name)
                return func(self, *args, **kwargs)
            except ApiError as exc:
                request.env.cr.rollback()
                return error_response(exc.status, exc.code, exc.message)
            except TooManyLabJobs as exc:
                request.env.cr.rollback()
                return error_response(429, "too_many_jobs", str(exc))
            except BurstRunning as exc:
                request.env.cr.rollback()
                return error_response(409, "conflict", str(exc))
            except AccessError as exc:
                request.env.cr.rollback()
                return error_response(403, "forbidden", str(exc))
            except (ValidationError, UserError, workloads.WorkloadError) as exc:
                request.env.cr.rollback()
                return error_response(400, "invalid", str(exc))

        return wrapper

    return decorator


def json_body():
    """The request's JSON object; only ``application/json`` is accepted.

    A cross-site form cannot send that content type without a CORS
    preflight, which Odoo does not grant: this keeps the state-changing
    routes CSRF-safe with the session cookie alone.
    """
    httprequest = request.httprequest
    if httprequest.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    if (httprequest.content_length or 0) > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", "The body is limited to %d bytes." % MAX_BODY_BYTES)
    try:
        body = json.loads(httprequest.get_data(cache=False) or b"null")
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "The body is not valid JSON: %s" % exc) from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "The body must be a JSON object.")
    return body


def bounded_int(name, value, minimum, maximum, default):
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not minimum <= number <= maximum:
        raise ApiError(400, "invalid", "%s must be an integer between %d and %d, got %r" % (
            name, minimum, maximum, value))  # fmt: skip
    return number


def int_arg(name, value, spec_name):
    """A query-string integer, bounded like the workload's parameter."""
    try:
        return workloads.validate(spec_name, {name: value})[name]
    except workloads.WorkloadError as exc:
        raise ApiError(400, "invalid", str(exc)) from exc


class AsyncLabController(http.Controller):
    @http.route("/async_lab/whoami", type="http", auth="user", methods=["GET"])
    def whoami(self):
        """Which process and thread served this very request."""
        return request.make_json_response({
            "pid": os.getpid(),
            "master_pid": master_pid(),
            "host": socket.gethostname(),
            "role": current_role(),
            "thread": threading.current_thread().name,
            "db": request.db,
            "uid": request.env.uid,
            "mode": server_mode(),
        })  # fmt: skip

    # -- background pattern: enqueue, answer 202, poll ----------------------
    @api_route("/async_lab/jobs", methods=["POST"], group=GROUP_MANAGER)
    def jobs_create(self):
        body = json_body()
        unknown = sorted(set(body) - {"workload", "params", "count", "channel", "priority"})
        if unknown:
            raise ApiError(400, "invalid", "Unknown keys: %s" % ", ".join(unknown))
        if "workload" not in body:
            raise ApiError(400, "invalid", "workload is required; one of: %s" % ", ".join(workloads.WORKLOADS))
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ApiError(400, "invalid", "params must be a JSON object")
        burst, uuids = request.env["async_lab.burst"].api_create_and_launch(
            body["workload"], params, count=body.get("count", 10),
            channel=body.get("channel"), priority=body.get("priority", 10),
        )  # fmt: skip
        return request.make_json_response(
            {"burst_id": burst.id, "job_uuids": uuids, "status_url": "/async_lab/jobs/%s" % uuids[0],
             "status_urls": ["/async_lab/jobs/%s" % uuid for uuid in uuids]},
            status=202,
        )  # fmt: skip

    @api_route("/async_lab/jobs/<string:uuid>", methods=["GET"])
    def jobs_read(self, uuid):
        job = (
            request.env["queue.job"].sudo().search([("uuid", "=", uuid), ("async_lab_burst_id", "!=", False)], limit=1)
        )
        if not job:
            raise ApiError(404, "not_found", "No Async Lab job with uuid %s." % uuid)
        data = {name: job[name] or None for name in JOB_FIELDS}
        data.update({name: job[name].isoformat() + "Z" if job[name] else None for name in JOB_DATES})
        data.update(retry=job.retry, burst_id=job.async_lab_burst_id.id)
        return request.make_json_response(data)

    @api_route("/async_lab/stats", methods=["GET"])
    def stats(self, window=None):
        window = bounded_int("window", window, 1, MAX_WINDOW, DEFAULT_WINDOW)
        return request.make_json_response(request.env["async_lab.stats"].get_stats(window))

    # -- await pattern: run it inside the request, then answer ----------------
    @api_route("/async_lab/run", methods=["POST"], group=GROUP_MANAGER)
    def run(self):
        body = json_body()
        unknown = sorted(set(body) - {"workload", "params", "strategy", "tasks"})
        if unknown:
            raise ApiError(400, "invalid", "Unknown keys: %s" % ", ".join(unknown))
        for key in ("workload", "strategy"):
            if not isinstance(body.get(key), str):
                raise ApiError(400, "invalid", "%s is required (a string)" % key)
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise ApiError(400, "invalid", "params must be a JSON object")
        result = request.env["async_lab.experiment"].api_run_inline(
            body["workload"], params, body["strategy"], body.get("tasks", 1)
        )
        return request.make_json_response(result)

    # -- load-test targets ----------------------------------------------------
    @api_route("/async_lab/io", methods=["GET"], auth="public", group=None)
    def io(self, ms=None, token=None, **_kw):
        """Sleep ``ms`` milliseconds; for logged-in users, or signed self-calls."""
        if request.env.user._is_public():
            secret = request.env["ir.config_parameter"].sudo().get_param("database.secret")
            if not tokens.verify(secret, "io", token, now=time.time()):
                raise ApiError(401, "unauthorized", "Log in, or sign the call (io_http jobs do).")
        elif not request.env.user.has_group(GROUP_USER):
            raise ApiError(403, "forbidden", "This needs the Async Lab / User group.")
        ms = int_arg("ms", ms, "io_sleep")
        start = time.perf_counter()
        workloads.io_sleep(ms)
        return request.make_json_response(
            {"pid": os.getpid(), "ms": ms, "elapsed_ms": round((time.perf_counter() - start) * 1000, 2)}
        )

    @api_route("/async_lab/cpu", methods=["GET"])
    def cpu(self, n=None):
        n = int_arg("n", n, "cpu_python")
        start = time.perf_counter()
        result = workloads.cpu_python(n)
        return request.make_json_response(
            {"pid": os.getpid(), "n": n, "result": result,
             "elapsed_ms": round((time.perf_counter() - start) * 1000, 2)}
        )  # fmt: skip
