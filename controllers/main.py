# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Async Lab's JSON API.

Routes stay thin: parse and bound the input, call one model method, return a
dict. Every error is a 4xx JSON body ``{"error": {"code", "message"}}``, an
anonymous call included (401, never a redirect to the login page). The API
is described in OpenAPI 3 beside this file (``openapi.py``), served at
``/async_lab/openapi.json``.

=======  ==========================  ==========================================
method   route                       what (who)
=======  ==========================  ==========================================
GET      /async_lab/whoami           the process and thread serving the call
POST     /async_lab/jobs             enqueue a burst; 202 and poll (Manager)
GET      /async_lab/jobs/<uuid>      one job of a burst
GET      /async_lab/jobs/<uuid>/why  why a job is not running (User: lab jobs; Job Queue Manager: any)
GET      /async_lab/stats            the stats payload (``async_lab.stats``)
GET      /async_lab/advice           the capacity advisor's findings
GET      /async_lab/metrics          Prometheus metrics (session or API key)
POST     /async_lab/impact           measure what a burst costs users; 202 and poll (Manager)
GET      /async_lab/impact/<id>      a user-impact run's state and figures
POST     /async_lab/control          signal a node's master or worker; 202 and poll (Manager)
GET      /async_lab/control/<id>     a server control's state and result
POST     /async_lab/run              run N tasks in the request; 200 (Manager)
GET      /async_lab/io?ms=           sleep, then answer (Manager, or signed)
GET      /async_lab/cpu?n=           a pure-Python loop (Manager)
GET      /async_lab/openapi.json     this API, in OpenAPI 3
any      /async_lab/<anything else>  404 (JSON)
=======  ==========================  ==========================================

Every route needs the Async Lab / User group unless it says otherwise.
"""

import functools
import json
import logging
import os
import socket
import threading
import time

import psycopg2
import werkzeug.exceptions

from odoo import http
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request

from ..lib import control, metrics, tokens, workloads
from ..lib.catalogue import CHANNEL_IO
from ..lib.groups import GROUP_MANAGER, GROUP_QUEUE_JOB_MANAGER, GROUP_USER
from ..lib.times import iso
from ..models.async_lab_advisor import ADVICE_WINDOW, MAX_ADVICE_WINDOW
from ..models.async_lab_burst import BurstRunning, TooManyLabJobs
from ..models.async_lab_control import ControlError
from ..models.async_lab_experiment import calibration
from ..models.async_lab_stats import DEFAULT_WINDOW, MAX_WINDOW
from ..process_tracker import current_role, master_pid, server_mode
from . import openapi

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
#: Deepest nesting of a JSON body (the API's bodies are two levels deep).
MAX_JSON_DEPTH = 8
#: Query parameters any route accepts and ignores (Odoo reads them itself).
IGNORED_QUERY = frozenset({"db", "debug"})
JOB_FIELDS = (
    "uuid",
    "state",
    "channel",
    "priority",
    "retry",
    "max_retries",
    "worker_pid",
    "result",
    "exc_name",
    "exc_message",
)
JOB_DATES = ("date_created", "date_enqueued", "date_started", "date_done", "date_cancelled", "eta")
#: Longest a direct call of /async_lab/io or /async_lab/cpu may hold an HTTP
#: worker, in seconds. Signed io_http self-calls wait what their job asks
#: (at most the io_http workload's 10 s): the lab's own caps bound those.
LOAD_CALL_MAX_SECONDS = 5
#: Direct load calls one user may have running at once, server-wide (all
#: workers: PostgreSQL advisory locks): ir.config_parameter, default 2
#: (lib/settings.py).
LOAD_CALLS_PARAM = "async_lab.load_calls_per_user"
#: Namespace of those advisory locks: pg_try_advisory_xact_lock(namespace + slot, uid).
LOAD_LOCK_NAMESPACE = 0x41534C00  # "ASL\0"


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status, code, message):
    return request.make_json_response({"error": {"code": code, "message": message}}, status=status)


def bearer_user():
    """The user of the ``Authorization: Bearer <API key>`` header, or None without that header.

    The key is checked as Odoo checks an RPC key (``res.users.apikeys``, scope
    ``rpc``: a key of any scope); the addon never stores keys. A header whose
    key matches no active user's is a 401.
    """
    header = request.httprequest.headers.get("Authorization") or ""
    scheme, _sep, key = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    uid = key.strip() and request.env["res.users.apikeys"].sudo()._check_credentials(scope="rpc", key=key.strip())
    if not uid:
        raise ApiError(401, "unauthorized", "Invalid API key.")
    return uid


def check_caller(groups, *, signed, bearer):
    """The caller's session or API key, and group: ApiError 401 or 403 otherwise."""
    uid = bearer and bearer_user()
    if uid:
        request.update_env(user=uid)
    if request.env.user._is_public() and not signed:
        raise ApiError(401, "unauthorized", "Log in first: this API needs an Odoo session.")
    user = request.env.user
    if groups and not user._is_public() and not any(user.has_group(g) for g in groups):
        names = " or ".join(request.env.ref(g).full_name for g in groups)
        raise ApiError(403, "forbidden", "This needs the %s group." % names)


def api_route(route, *, methods, group=GROUP_USER, query=(), signed=False, bearer=False, on_refused=None, **kw):
    """An http route answering JSON, whose errors are 4xx JSON, never a 500.

    ``group`` is the group the caller needs (a tuple: any one of them);
    anonymous callers get 401 (the
    route itself is ``auth="public"``, so that Odoo does not redirect them to
    the login page), unless ``signed`` lets the route check a self-call's
    token itself. A ``bearer`` route also takes an Odoo API key in an
    ``Authorization: Bearer`` header (:func:`bearer_user`), for callers
    without a session such as Prometheus. ``query`` names the query
    parameters the route takes: any
    other is a 400. On any error the transaction is rolled back, so bad
    input loses nothing and writes nothing; then ``on_refused(status,
    message)``, if given, may record the refusal of a logged-in caller (a
    4xx but 401), which is committed with the error response.
    """
    allowed_query = IGNORED_QUERY | set(query)
    groups = group if isinstance(group, tuple) else (group,) if group else ()

    def refuse(status, code, message):
        request.env.cr.rollback()
        if on_refused and status != 401 and not request.env.user._is_public():
            try:
                with request.env.cr.savepoint():
                    on_refused(status, message)
            except Exception:  # recording the refusal must never change the answer
                _logger.exception("%s: the refusal could not be recorded", request.httprequest.path)
        return error_response(status, code, message)

    def decorator(func):
        @http.route(route, type="http", auth="public", methods=methods, csrf=False, save_session=False, **kw)
        @functools.wraps(func)
        def wrapper(self, *args, **kwargs):
            try:
                check_caller(groups, signed=signed, bearer=bearer)
                unknown = sorted(set(request.httprequest.args) - allowed_query)
                if unknown:
                    raise ApiError(
                        400,
                        "invalid",
                        "Unknown query parameters: %s; this route takes: %s"
                        % (", ".join(unknown), ", ".join(sorted(query)) or "none"),
                    )
                path_args = {key: value for key, value in kwargs.items() if key not in request.httprequest.args}
                query_args = {key: request.httprequest.args.get(key) for key in query}
                return func(self, *args, **path_args, **query_args)
            except ApiError as exc:
                return refuse(exc.status, exc.code, exc.message)
            except TooManyLabJobs as exc:
                return refuse(429, "too_many_jobs", str(exc))
            except BurstRunning as exc:
                return refuse(409, "conflict", str(exc))
            except AccessError as exc:
                return refuse(403, "forbidden", str(exc))
            except ControlError as exc:
                return refuse(exc.http_status, "not_found" if exc.http_status == 404 else "refused", str(exc))
            except (ValidationError, UserError, workloads.WorkloadError) as exc:
                return refuse(400, "invalid", str(exc))
            except (psycopg2.Error, werkzeug.exceptions.HTTPException):
                raise  # Odoo retries concurrency errors, and answers HTTP exceptions itself
            except Exception:  # a bug: still logged, and still the API's error shape
                _logger.exception("%s %s failed", request.httprequest.method, request.httprequest.path)
                request.env.cr.rollback()
                return error_response(500, "internal_error", "The server failed on this request; see its log.")

        # Odoo passes a route only the keyword arguments its signature names,
        # and logs a warning for the others: take them all, refuse unknown
        # ones above.
        del wrapper.__wrapped__
        return wrapper

    return decorator


def json_depth(value):
    """How deeply ``value`` nests lists and dicts (iteratively: no recursion).

    >>> json_depth(1), json_depth([]), json_depth({"a": [1, {"b": 2}]})
    (0, 1, 3)
    """
    depth, level = 0, [(value, 1)]
    while level:
        node, at = level.pop()
        if isinstance(node, (list, dict)):
            depth = max(depth, at)
            level.extend((child, at + 1) for child in (node.values() if isinstance(node, dict) else node))
    return depth


#: Where json_body keeps the request's parsed body (the stream is read once).
BODY_KEY = "async_lab.json_body"


def record_refused_control(status, message):
    """Keep a refused server control in the log (who, what, why), as an action carried out is.

    Only a request of an Async Lab user (a User trying a Manager's lever)
    that names a known action: one that does not is bad input, answered and
    not recorded, and other users' requests are answered only.
    """
    if not request.env.user.has_group(GROUP_USER):
        return
    try:
        body = json_body()  # read once: json_body keeps it for the request
    except ApiError:
        return
    action = body.get("action")
    if not isinstance(action, str) or action not in control.ACTIONS:
        return
    request.env["async_lab.control"].sudo()._record_refusal(
        action, body.get("node"), body.get("pid"), "HTTP %s: %s" % (status, message), request.env.uid
    )


def json_body():
    """The request's JSON object; only ``application/json`` is accepted.

    A cross-site form cannot send that content type without a CORS
    preflight, which Odoo does not grant: this keeps the state-changing
    routes CSRF-safe with the session cookie alone. At most MAX_BODY_BYTES
    are read, whatever Content-Length says (a chunked body has none).
    """
    httprequest = request.httprequest
    if BODY_KEY in httprequest.environ:
        return httprequest.environ[BODY_KEY]
    if httprequest.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    too_large = ApiError(413, "too_large", "The body is limited to %d bytes." % MAX_BODY_BYTES)
    if (httprequest.content_length or 0) > MAX_BODY_BYTES:
        raise too_large
    # Odoo's request wrapper offers get_data(), which reads a chunked body
    # whole (werkzeug does not limit a terminated input): read the stream.
    data = httprequest._HTTPRequest__wrapped.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise too_large
    try:
        body = json.loads(data or b"null")
    except RecursionError as exc:
        raise ApiError(400, "invalid_json", "The body nests deeper than %d levels." % MAX_JSON_DEPTH) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "The body is not valid JSON: %s" % exc) from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", "The body must be a JSON object.")
    if json_depth(body) > MAX_JSON_DEPTH:
        raise ApiError(400, "invalid_json", "The body nests deeper than %d levels." % MAX_JSON_DEPTH)
    httprequest.environ[BODY_KEY] = body
    return body


def check_body(body, allowed, strings=(), objects=()):
    """Refuse unknown keys and values of the wrong JSON type, naming them."""
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ApiError(400, "invalid", "Unknown keys: %s" % ", ".join(unknown))
    for key in strings:
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise ApiError(400, "invalid", "%s must be a string, got %s" % (key, type(body[key]).__name__))
    for key in objects:
        if key in body and body[key] is not None and not isinstance(body[key], dict):
            raise ApiError(400, "invalid", "%s must be a JSON object" % key)


def bounded_int(name, value, minimum, maximum, default):
    """A query-string integer (``default`` if absent), bounded by workloads.clean_int: else a 400."""
    if value in (None, ""):
        return default
    try:
        return workloads.clean_int(name, value, minimum, maximum)
    except workloads.WorkloadError as exc:
        raise ApiError(400, "invalid", str(exc)) from exc


def int_arg(name, value, spec_name):
    """A query-string integer, bounded like the workload's parameter."""
    try:
        return workloads.validate(spec_name, {name: value})[name]
    except workloads.WorkloadError as exc:
        raise ApiError(400, "invalid", str(exc)) from exc


def load_calls_per_user(env):
    """The per-user limit of direct load calls (ir.config_parameter, see lib/settings.py)."""
    return env["ir.config_parameter"]._async_lab_int(LOAD_CALLS_PARAM)


def take_load_slot(cr, uid, limit):
    """Take one of ``uid``'s ``limit`` load slots until ``cr``'s transaction ends.

    A slot is a transaction-level advisory lock: shared by every worker of
    every server on the database, released at commit, rollback, or when a
    killed worker's connection closes. Return False if all are taken.
    """
    for slot in range(limit):
        cr.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", (LOAD_LOCK_NAMESPACE + slot, uid))
        if cr.fetchone()[0]:
            return True
    return False


def start_load_call():
    """Admit a direct load call, or raise 429 if its user has too many running."""
    limit = load_calls_per_user(request.env)
    if not take_load_slot(request.env.cr, request.env.uid, limit):
        raise ApiError(
            429,
            "too_many_requests",
            "You already have %d load calls running (the per-user "
            "limit, ir.config_parameter %s); wait for one to end." % (limit, LOAD_CALLS_PARAM),
        )


class AsyncLabController(http.Controller):
    @api_route("/async_lab/whoami", methods=["GET"])
    def whoami(self):
        """Which process and thread served this very request."""
        return request.make_json_response(
            {
                "pid": os.getpid(),
                "master_pid": master_pid(),
                "host": socket.gethostname(),
                "role": current_role(),
                "thread": threading.current_thread().name,
                "db": request.db,
                "uid": request.env.uid,
                "mode": server_mode(),
            }
        )

    # -- background pattern: enqueue, answer 202, poll ----------------------
    @api_route("/async_lab/jobs", methods=["POST"], group=GROUP_MANAGER)
    def jobs_create(self):
        body = json_body()
        check_body(
            body,
            {"workload", "params", "count", "channel", "priority"},
            strings=("workload", "channel"),
            objects=("params",),
        )
        if not body.get("workload"):
            raise ApiError(400, "invalid", "workload is required; one of: %s" % ", ".join(workloads.WORKLOADS))
        params = body.get("params") or {}
        burst, uuids = request.env["async_lab.burst"].api_create_and_launch(
            body["workload"],
            params,
            count=body.get("count", 10),
            channel=body.get("channel"),
            priority=body.get("priority", 10),
        )
        return request.make_json_response(
            {
                "burst_id": burst.id,
                "job_uuids": uuids,
                "status_url": "/async_lab/jobs/%s" % uuids[0],
                "status_urls": ["/async_lab/jobs/%s" % uuid for uuid in uuids],
            },
            status=202,
        )

    @api_route("/async_lab/impact", methods=["POST"], group=GROUP_MANAGER)
    def impact_create(self):
        """What a burst costs interactive users: run a user-impact experiment, answer 202, poll."""
        body = json_body()
        check_body(
            body,
            {"workload", "params", "tasks", "channel", "rate"},
            strings=("workload", "channel"),
            objects=("params",),
        )
        experiment = request.env["async_lab.experiment"].api_user_impact(
            body.get("workload") or "io_sleep",
            body.get("params") or {"ms": 1000},
            tasks=body.get("tasks", 40),
            channel=body.get("channel") or CHANNEL_IO,
            rate=body.get("rate", 5),
        )
        return request.make_json_response(
            {"experiment_id": experiment.id, "status_url": "/async_lab/impact/%d" % experiment.id}, status=202
        )

    @api_route("/async_lab/impact/<int:experiment_id>", methods=["GET"])
    def impact_read(self, experiment_id):
        if not 0 < experiment_id < 2**31:  # PostgreSQL ids are int4: larger ones name no record
            raise ApiError(404, "not_found", "No user-impact experiment %s." % experiment_id)
        experiment = request.env["async_lab.experiment"].search(
            [("id", "=", experiment_id), ("kind", "=", "user_impact")], limit=1
        )
        if not experiment:
            raise ApiError(404, "not_found", "No user-impact experiment %s." % experiment_id)
        return request.make_json_response(experiment.api_impact_status())

    @api_route("/async_lab/control", methods=["POST"], group=GROUP_MANAGER, on_refused=record_refused_control)
    def control_create(self):
        """Ask the node that owns a process to signal it (or its master); answer 202, poll."""
        body = json_body()
        check_body(body, {"action", "node", "pid", "burst_id"}, strings=("action", "node"))
        if not body.get("action"):
            raise ApiError(400, "invalid", "action is required; one of: %s" % ", ".join(control.ACTIONS))
        record = request.env["async_lab.control"].api_request(
            body["action"], body.get("node"), body.get("pid"), body.get("burst_id")
        )
        return request.make_json_response(
            {"id": record.id, "status_url": "/async_lab/control/%d" % record.id}, status=202
        )

    @api_route("/async_lab/control/<int:control_id>", methods=["GET"])
    def control_read(self, control_id):
        record = request.env["async_lab.control"].browse(control_id if 0 < control_id < 2**31 else []).exists()
        if not record:
            raise ApiError(404, "not_found", "No server control %s." % control_id)
        return request.make_json_response(record.api_status())

    @api_route("/async_lab/jobs/<string:uuid>", methods=["GET"])
    def jobs_read(self, uuid):
        job = (
            request.env["queue.job"].sudo().search([("uuid", "=", uuid), ("async_lab_burst_id", "!=", False)], limit=1)
        )
        if not job:
            raise ApiError(404, "not_found", "No Async Lab job with uuid %s." % uuid)
        data = {name: job[name] or None for name in JOB_FIELDS}
        data.update(exc_message=tokens.scrub_urls(data["exc_message"]), result=tokens.scrub_urls(data["result"]))
        data.update({name: iso(job[name]) for name in JOB_DATES})
        data.update(retry=job.retry, burst_id=job.async_lab_burst_id.id)
        return request.make_json_response(data)

    @api_route("/async_lab/jobs/<string:uuid>/why", methods=["GET"], group=(GROUP_USER, GROUP_QUEUE_JOB_MANAGER))
    def jobs_why(self, uuid):
        # queue_job's form shows why too: its managers may ask without the Async Lab group.
        # As the caller: Async Lab users find lab jobs, queue_job managers every job.
        job = request.env["queue.job"].search([("uuid", "=", uuid)], limit=1)
        if not job:
            raise ApiError(404, "not_found", "No job with uuid %s that you may read." % uuid)
        return request.make_json_response(job.async_lab_why())

    @api_route("/async_lab/stats", methods=["GET"], query=("window",))
    def stats(self, window=None):
        window = bounded_int("window", window, 1, MAX_WINDOW, DEFAULT_WINDOW)
        return request.make_json_response(request.env["async_lab.stats"].get_stats(window))

    @api_route("/async_lab/advice", methods=["GET"], query=("window",))
    def advice(self, window=None):
        window = bounded_int("window", window, 1, MAX_ADVICE_WINDOW, ADVICE_WINDOW)
        return request.make_json_response(request.env["async_lab.advisor"].get_advice(window))

    @api_route("/async_lab/metrics", methods=["GET"], bearer=True)
    def prometheus_metrics(self):
        body = request.env["async_lab.metrics"].render()
        return request.make_response(body, headers=[("Content-Type", metrics.CONTENT_TYPE)])

    # -- await pattern: run it inside the request, then answer ----------------
    @api_route("/async_lab/run", methods=["POST"], group=GROUP_MANAGER)
    def run(self):
        body = json_body()
        check_body(body, {"workload", "params", "strategy", "tasks"}, objects=("params",))
        for key in ("workload", "strategy"):
            if not isinstance(body.get(key), str):
                raise ApiError(400, "invalid", "%s is required (a string)" % key)
        params = body.get("params") or {}
        result = request.env["async_lab.experiment"].api_run_inline(
            body["workload"], params, body["strategy"], body.get("tasks", 1)
        )
        return request.make_json_response(result)

    # -- load-test targets ----------------------------------------------------
    @api_route("/async_lab/io", methods=["GET"], group=GROUP_MANAGER, query=("ms",), signed=True)
    def io(self, ms=None):
        """Sleep ``ms`` milliseconds: for Managers, or io_http's signed self-calls."""
        token = request.httprequest.headers.get(tokens.HEADER)
        if request.env.user._is_public() or token is not None:
            if token is None:
                raise ApiError(401, "unauthorized", "Log in, or sign the call (io_http jobs do).")
            ms = int_arg("ms", ms, "io_sleep")
            secret = request.env["ir.config_parameter"].sudo().get_param("database.secret")
            key = tokens.derive_key(secret, request.db)
            if not tokens.verify(key, "io", {"ms": ms}, token, now=time.time()):
                raise ApiError(401, "unauthorized", "Log in, or sign the call (io_http jobs do).")
        else:
            ms = int_arg("ms", ms, "io_sleep")
            longest = LOAD_CALL_MAX_SECONDS * 1000
            if ms > longest:
                raise ApiError(
                    400,
                    "invalid",
                    "ms must be at most %d: a call holds an HTTP worker; longer waits "
                    "belong in a burst (POST /async_lab/jobs)." % longest,
                )
            start_load_call()
        start = time.perf_counter()
        workloads.io_sleep(ms)
        return request.make_json_response(
            {"pid": os.getpid(), "ms": ms, "elapsed_ms": round((time.perf_counter() - start) * 1000, 2)}
        )

    @api_route("/async_lab/cpu", methods=["GET"], group=GROUP_MANAGER, query=("n",))
    def cpu(self, n=None):
        """A pure-Python loop of ``n`` iterations, at most LOAD_CALL_MAX_SECONDS long on this machine."""
        n = int_arg("n", n, "cpu_python")
        rate = calibration()[workloads.CPU_PYTHON_RATE]
        if n / rate > LOAD_CALL_MAX_SECONDS:
            raise ApiError(
                400,
                "invalid",
                "n=%d would take about %.0f s here, more than the %d s a call may hold an "
                "HTTP worker: at most %d." % (n, n / rate, LOAD_CALL_MAX_SECONDS, rate * LOAD_CALL_MAX_SECONDS),
            )
        start_load_call()
        start = time.perf_counter()
        result = workloads.cpu_python(n)
        return request.make_json_response(
            {"pid": os.getpid(), "n": n, "result": result, "elapsed_ms": round((time.perf_counter() - start) * 1000, 2)}
        )

    @api_route("/async_lab/<path:subpath>", methods=None, group=None)
    def not_found(self, subpath):
        """Any other /async_lab/ path (or method): a JSON 404, not Odoo's HTML page."""
        raise ApiError(
            404,
            "not_found",
            "No route %s %s in the Async Lab API; see /async_lab/openapi.json."
            % (request.httprequest.method, request.httprequest.path),
        )

    @api_route("/async_lab/openapi.json", methods=["GET"])
    def openapi(self):
        """This API, described in OpenAPI 3."""
        return request.make_json_response(openapi.spec(max_io_ms=LOAD_CALL_MAX_SECONDS * 1000))
