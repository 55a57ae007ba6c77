# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Who may do what: every route and every RPC-callable method, for every kind of caller.

The tables are the contract. A route or a public method that the addon adds
without a row here fails :meth:`TestAccessMatrix.test_every_route_has_a_row`
or :meth:`TestAccessMatrix.test_every_public_method_has_a_row`.
"""

import json
import os

from odoo import api
from odoo.exceptions import AccessError
from odoo.models import regex_private
from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.bus.tests.common import WebsocketCase

from ..models.async_lab_stats import DASHBOARD_CHANNEL
from .common import AsyncLabCase, register_node

#: Rights: "user" (Async Lab / User), "manager" (Async Lab / Manager),
#: "queue_job" (Job Queue Manager).
CALLERS = {
    "anonymous": None,
    "portal": ("base.group_portal", set()),
    "internal": ("base.group_user", set()),
    "lab_user": ("base.group_user,async_lab.async_lab_group_user", {"user"}),
    "lab_manager": ("base.group_user,async_lab.async_lab_group_manager", {"user", "manager"}),
    "queue_job_manager": ("base.group_user,queue_job.group_queue_job_manager", {"queue_job"}),
}

#: (route rule, HTTP method) -> (right needed, path, JSON body or None).
ROUTES = {
    ("/async_lab/whoami", "GET"): ("user", "/async_lab/whoami", None),
    ("/async_lab/stats", "GET"): ("user", "/async_lab/stats?window=5", None),
    ("/async_lab/advice", "GET"): ("user", "/async_lab/advice?window=5", None),
    ("/async_lab/impact/<int:experiment_id>", "GET"): ("user", "/async_lab/impact/{impact_id}", None),
    ("/async_lab/impact", "POST"): ("manager", "/async_lab/impact", {"params": {"ms": 1}, "tasks": 1, "rate": 1}),
    ("/async_lab/jobs/<string:uuid>", "GET"): ("user", "/async_lab/jobs/{job_uuid}", None),
    # queue_job's form asks why of any job: its managers may, without the Async Lab group.
    ("/async_lab/jobs/<string:uuid>/why", "GET"): (("user", "queue_job"), "/async_lab/jobs/{job_uuid}/why", None),
    ("/async_lab/openapi.json", "GET"): ("user", "/async_lab/openapi.json", None),
    ("/async_lab/metrics", "GET"): ("user", "/async_lab/metrics", None),
    ("/async_lab/jobs", "POST"): ("manager", "/async_lab/jobs", {"workload": "noop", "count": 1}),
    # "{pid}": the HTTP worker of the fake node (register_node), a child of this process never signalled.
    ("/async_lab/control", "POST"): ("manager", "/async_lab/control", {"action": "recycle", "pid": "{pid}"}),
    ("/async_lab/control/<int:control_id>", "GET"): ("user", "/async_lab/control/{control_id}", None),
    ("/async_lab/run", "POST"): (
        "manager",
        "/async_lab/run",
        {"workload": "io_sleep", "params": {"ms": 1}, "strategy": "sequential"},
    ),
    ("/async_lab/io", "GET"): ("manager", "/async_lab/io?ms=1", None),
    ("/async_lab/cpu", "GET"): ("manager", "/async_lab/cpu?n=10", None),
    ("/async_lab/dashboard/data", "*"): ("user", "/async_lab/dashboard/data", "jsonrpc"),
    # Any other path: a JSON 404 for every caller with a session (None: no right needed).
    ("/async_lab/<path:subpath>", "*"): (None, "/async_lab/no/such/route", None),
}


def _as_caller(record, env):
    env.invalidate_all()  # as over RPC: nothing read yet, so every read is checked
    return record.with_env(env)


def _new_burst(env):
    return _as_caller(env["async_lab.burst"].sudo().create({"workload": "noop", "job_count": 1}), env)


def _new_experiment(env):
    return _as_caller(env["async_lab.experiment"].sudo().create({"workload": "io_sleep", "ms": 1, "tasks": 1}), env)


#: The fake node's HTTP worker and master (TestAccessMatrix.setUpClass).
NODE = {}


def _node_row(env, role):
    pid = NODE["pid"] if role == "http" else NODE["master_pid"]
    return _as_caller(env["async_lab.worker"].sudo().search([("pid", "=", pid), ("state", "=", "alive")]), env)


#: (model, method) -> (right needed, call(env)).
METHODS = {
    ("async_lab.control", "create"): (
        "manager",
        lambda env: env["async_lab.control"].create({"action": "recycle", "pid": NODE["pid"]}),
    ),
    ("async_lab.control", "api_request"): (
        "manager",
        lambda env: env["async_lab.control"].api_request("kill", pid=NODE["pid"]),
    ),
    ("async_lab.control", "api_status"): (
        "user",
        lambda env: _as_caller(
            env["async_lab.control"].sudo().create({"action": "kill", "pid": NODE["pid"]}), env
        ).api_status(),
    ),
    ("async_lab.worker", "action_control_recycle"): (
        "manager",
        lambda env: _node_row(env, "http").action_control_recycle(),
    ),
    ("async_lab.worker", "action_control_kill"): ("manager", lambda env: _node_row(env, "http").action_control_kill()),
    ("async_lab.worker", "action_control_add_http_worker"): (
        "manager",
        lambda env: _node_row(env, "master").action_control_add_http_worker(),
    ),
    ("async_lab.worker", "action_control_remove_http_worker"): (
        "manager",
        lambda env: _node_row(env, "master").action_control_remove_http_worker(),
    ),
    ("async_lab.burst", "action_requeue"): ("manager", lambda env: _new_burst(env).action_requeue()),
    ("async_lab.burst", "action_launch"): ("manager", lambda env: _new_burst(env).action_launch()),
    ("async_lab.burst", "action_open_jobs"): ("user", lambda env: _new_burst(env).action_open_jobs()),
    ("async_lab.burst", "action_cancel"): ("manager", lambda env: _new_burst(env).action_cancel()),
    ("async_lab.burst", "action_reset"): ("manager", lambda env: _new_burst(env).action_reset()),
    ("async_lab.burst", "api_create_and_launch"): (
        "manager",
        lambda env: env["async_lab.burst"].api_create_and_launch("noop", {}, count=1),
    ),
    ("async_lab.dashboard", "get_data"): ("user", lambda env: env["async_lab.dashboard"].get_data()),
    ("async_lab.dashboard", "launch_burst"): (
        "manager",
        lambda env: env["async_lab.dashboard"].launch_burst("noop", 1, "root.async_lab"),
    ),
    ("async_lab.experiment", "action_run"): ("manager", lambda env: _new_experiment(env).action_run()),
    ("async_lab.experiment", "action_cancel"): ("manager", lambda env: _new_experiment(env).action_cancel()),
    ("async_lab.experiment", "action_reset"): ("manager", lambda env: _new_experiment(env).action_reset()),
    ("async_lab.experiment", "run_preset"): ("manager", lambda env: env["async_lab.experiment"].run_preset("io_sleep")),
    ("async_lab.experiment", "get_presets"): ("user", lambda env: env["async_lab.experiment"].get_presets()),
    ("async_lab.experiment", "get_latest_results"): (
        "user",
        lambda env: env["async_lab.experiment"].get_latest_results(),
    ),
    ("async_lab.experiment", "api_run_inline"): (
        "manager",
        lambda env: env["async_lab.experiment"].api_run_inline("io_sleep", {"ms": 1}, "sequential", 1),
    ),
    ("async_lab.stats", "get_stats"): ("user", lambda env: env["async_lab.stats"].get_stats(5)),
    # Lab jobs for Async Lab users, every job for queue_job managers.
    ("queue.job", "async_lab_why"): (
        ("user", "queue_job"),
        lambda env: (
            env["queue.job"].sudo().search([("async_lab_burst_id", "!=", False)], limit=1).with_env(env).async_lab_why()
        ),
    ),
    ("async_lab.experiment", "api_user_impact"): (
        "manager",
        lambda env: env["async_lab.experiment"].api_user_impact("io_sleep", {"ms": 1}, tasks=1, rate=1),
    ),
    ("async_lab.experiment", "api_impact_status"): (
        "user",
        lambda env: _as_caller(
            env["async_lab.experiment"]
            .sudo()
            .create({"kind": "user_impact", "workload": "io_sleep", "ms": 1, "tasks": 1}),
            env,
        ).api_impact_status(),
    ),
    ("async_lab.advisor", "get_advice"): ("user", lambda env: env["async_lab.advisor"].get_advice(5)),
    ("async_lab.metrics", "get_snapshot"): ("user", lambda env: env["async_lab.metrics"].get_snapshot()),
    ("async_lab.metrics", "render"): ("user", lambda env: env["async_lab.metrics"].render()),
    # queue.job's write is queue_job's right; async_lab only scrubs what it stores.
    ("queue.job", "write"): (
        "queue_job",
        lambda env: env["queue.job"].sudo().search([], limit=1).with_env(env).write({"priority": 7}),
    ),
}


def _addon_public_methods(env):
    """{(model, method)} of the public methods that async_lab's classes define, by model."""
    found = set()
    for name in env.registry:
        for cls in type(env[name]).__mro__:
            if not cls.__module__.startswith("odoo.addons.async_lab."):
                continue
            for attr, value in vars(cls).items():
                if callable(value) and not regex_private.match(attr) and not isinstance(value, type):
                    found.add((name, attr))
    return found


@tagged("post_install", "-at_install")
class TestAccessMatrix(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.users = {}
        for caller, spec in CALLERS.items():
            if spec:
                cls.users[caller] = new_test_user(cls.env, "access_%s" % caller, groups=spec[0])
        manager = cls.users["lab_manager"]
        _burst, uuids = cls.env["async_lab.burst"].with_user(manager).api_create_and_launch("noop", {}, count=1)
        cls.job_uuid = uuids[0]
        child = register_node(cls.addClassCleanup, cls.env)
        NODE.update(pid=child.pid, master_pid=os.getpid())
        cls.control_id = cls.env["async_lab.control"].sudo().create({"action": "kill", "pid": child.pid}).id
        cls.impact_id = (
            cls.env["async_lab.experiment"]
            .create({"kind": "user_impact", "workload": "io_sleep", "ms": 1, "tasks": 1})
            .id
        )

    def rights(self, caller):
        return CALLERS[caller][1] if CALLERS[caller] else set()

    def allowed(self, caller, needed):
        """``needed`` is a right, or a tuple of rights any of which will do."""
        return bool(set(needed if isinstance(needed, tuple) else [needed]) & self.rights(caller))

    def expected(self, caller, needed):
        if needed is None and caller != "anonymous":
            return "not_found"
        if self.allowed(caller, needed):
            return "ok"
        return "unauthorized" if caller == "anonymous" else "forbidden"

    def test_every_route_has_a_row(self):
        routes = set()
        for rule in self.env["ir.http"].routing_map().iter_rules():
            if rule.rule.startswith("/async_lab"):
                methods = rule.endpoint.routing.get("methods") or ["*"]
                routes.update((rule.rule, method) for method in methods)
        self.assertEqual(routes - set(ROUTES), set(), "routes without a row in ROUTES")
        self.assertEqual(set(ROUTES) - routes, set(), "rows of ROUTES without a route")

    def test_every_public_method_has_a_row(self):
        methods = _addon_public_methods(self.env)
        self.assertEqual(methods - set(METHODS), set(), "public methods without a row in METHODS")
        self.assertEqual(set(METHODS) - methods, set(), "rows of METHODS without a method")

    def call_route(self, path, body):
        path = path.format(job_uuid=self.job_uuid, impact_id=self.impact_id, control_id=self.control_id)
        if isinstance(body, dict):
            body = {key: NODE["pid"] if value == "{pid}" else value for key, value in body.items()}
        if body == "jsonrpc":
            resp = self.url_open(
                path,
                data=json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}}),
                headers={"Content-Type": "application/json"},
            )
            data = resp.json()
            if "result" in data:
                return "ok"
            name = data["error"]["data"]["name"]
            return {
                "odoo.http.SessionExpiredException": "unauthorized",
                "odoo.exceptions.AccessError": "forbidden",
            }.get(name, name)
        if body is None:
            resp = self.url_open(path, allow_redirects=False)
        else:
            resp = self.url_open(
                path, data=json.dumps(body), headers={"Content-Type": "application/json"}, allow_redirects=False
            )
        if resp.status_code in (200, 202):
            return "ok"
        outcome = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(
            resp.status_code, "status %s" % resp.status_code
        )
        self.assertEqual(resp.json()["error"]["code"], outcome, resp.text)
        return outcome

    def test_routes(self):
        for caller in CALLERS:
            if caller == "anonymous":
                self.authenticate(None, None)
            else:
                self.authenticate("access_%s" % caller, "access_%s" % caller)
            for (rule, method), (needed, path, body) in ROUTES.items():
                with self.subTest(caller=caller, route=rule, method=method):
                    self.assertEqual(self.call_route(path, body), self.expected(caller, needed))

    def test_methods(self):
        uids = dict(
            {caller: user.id for caller, user in self.users.items()}, anonymous=self.env.ref("base.public_user").id
        )
        for caller, uid in uids.items():
            env = api.Environment(self.env.cr, uid, {})
            for (model, method), (needed, call) in METHODS.items():
                with self.subTest(caller=caller, model=model, method=method):
                    env.invalidate_all()
                    try:
                        with self.env.cr.savepoint():
                            call(env)
                        outcome = "ok"
                    except AccessError:
                        outcome = "forbidden"
                    self.assertEqual(outcome, "ok" if self.allowed(caller, needed) else "forbidden")

    def test_jobs_visible_by_caller(self):
        """Business jobs only for queue_job managers; lab jobs for Async Lab users too; nothing for the others."""
        self.env["queue.job"].sudo().search([]).unlink()
        self.env["res.partner"].with_delay().exists()
        _burst, uuids = (
            self.env["async_lab.burst"].with_user(self.users["lab_manager"]).api_create_and_launch("noop", {}, count=1)
        )
        expected = {
            "portal": None,
            "internal": None,
            "lab_user": uuids,
            "lab_manager": uuids,
            "queue_job_manager": "all",
        }
        every = self.env["queue.job"].sudo().search([]).mapped("uuid")
        self.assertEqual(len(every), 2)
        for caller, seen in expected.items():
            with self.subTest(caller=caller):
                jobs = self.env["queue.job"].with_user(self.users[caller])
                if seen is None:
                    with self.assertRaises(AccessError):
                        jobs.search([])
                else:
                    self.assertEqual(sorted(jobs.search([]).mapped("uuid")), sorted(every if seen == "all" else seen))


@tagged("at_install", "-post_install")
class TestBusinessJobsStayVisible(AsyncLabCase):
    """Installing async_lab takes no job away from queue_job managers (issue 11, item 1)."""

    def test_admin_and_queue_job_managers_see_every_job(self):
        business = self.env["res.partner"].with_delay().exists()
        lab = self.Burst.with_user(self.manager).api_create_and_launch("noop", {}, count=1)[1][0]
        admin = self.env.ref("base.user_admin")
        qj_manager = new_test_user(self.env, "qj_only", groups="base.group_user,queue_job.group_queue_job_manager")
        for user in (admin, qj_manager):
            with self.subTest(user=user.login):
                jobs = self.env["queue.job"].with_user(user)
                self.assertEqual(jobs.search_count([("uuid", "=", business.uuid)]), 1)
                self.assertEqual(jobs.search_count([("uuid", "=", lab)]), 1)
        # An Async Lab user (not a queue_job manager) sees the lab's jobs only.
        jobs = self.env["queue.job"].with_user(self.user)
        self.assertEqual(jobs.search_count([("uuid", "=", business.uuid)]), 0)
        self.assertEqual(jobs.search_count([("uuid", "=", lab)]), 1)


@tagged("post_install", "-at_install")
class TestAdminRpcSeesBusinessJobs(HttpCase):
    def test_search_count_over_rpc(self):
        business = self.env["res.partner"].with_delay().exists()
        self.authenticate("admin", "admin")
        resp = self.url_open(
            "/web/dataset/call_kw/queue.job/search_count",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "model": "queue.job",
                        "method": "search_count",
                        "args": [[("uuid", "=", business.uuid)]],
                        "kwargs": {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(resp.json().get("result"), 1, resp.text)


@tagged("post_install", "-at_install")
class TestDashboardChannel(WebsocketCase):
    """The dashboard's notifications reach Async Lab users only (issue 11, item 10)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lab_user = new_test_user(cls.env, "bus_lab_user", groups="base.group_user,async_lab.async_lab_group_user")
        cls.portal = new_test_user(cls.env, "bus_portal", groups="base.group_portal")

    def received_types(self, login):
        """Types of the notifications a websocket of ``login`` (None: anonymous) gets on subscribing."""
        if login:
            session = self.authenticate(login, login)
            websocket = self.websocket_connect(cookie="session_id=%s" % session.sid)
        else:
            websocket = self.websocket_connect()
        self.subscribe(websocket, [DASHBOARD_CHANNEL, "async_lab_test_probe"], self.env["bus.bus"]._bus_last_id())
        self.env["async_lab.stats"]._notify_dashboard("test")
        self.env["bus.bus"]._sendone("async_lab_test_probe", "probe", {})
        scoped = self.env["async_lab.stats"]._dashboard_bus_channel()
        self.trigger_notification_dispatching([DASHBOARD_CHANNEL, scoped, "async_lab_test_probe"])
        # The probe comes in the same batch as anything sent before it.
        return [notification["message"]["type"] for notification in json.loads(websocket.recv())]

    def test_portal_and_anonymous_get_nothing(self):
        for login in ("bus_portal", None):
            with self.subTest(login=login):
                self.assertEqual(self.received_types(login), ["probe"])

    def test_lab_users_get_the_refresh(self):
        self.assertEqual(self.received_types("bus_lab_user"), ["async_lab.refresh", "probe"])
