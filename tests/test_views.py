# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What the list, graph and pivot views show: filters, group rows, formats."""

from datetime import date, datetime, timedelta
from types import SimpleNamespace

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo.tests import tagged
from odoo.tools.safe_eval import safe_eval

from .common import AsyncLabCase


class BrowserDateTime:
    """``datetime.datetime`` as the web client's domain evaluator (py_js) has it.

    Its ``now()`` is the browser's local time, and ``to_utc()`` moves it to
    UTC by the browser's offset, here a fixed ``now`` and offset.
    """

    now_local = None
    offset = None

    def __init__(self, value):
        self.value = value

    @classmethod
    def now(cls):
        return cls(cls.now_local)

    def __add__(self, delta):
        return BrowserDateTime(self.value + delta)

    def __sub__(self, delta):
        return BrowserDateTime(self.value - delta)

    def to_utc(self):
        return BrowserDateTime(self.value - self.offset)

    def strftime(self, fmt):
        return self.value.strftime(fmt)


@tagged("at_install", "-post_install")
class TestViews(AsyncLabCase):
    def filter_domain(self, model, name, now_local, offset):
        arch = etree.fromstring(self.env[model].get_view(view_type="search")["arch"])
        (node,) = arch.xpath(f"//filter[@name='{name}']")
        BrowserDateTime.now_local, BrowserDateTime.offset = now_local, offset
        return safe_eval(
            node.get("domain"),
            {
                "datetime": SimpleNamespace(datetime=BrowserDateTime),
                "relativedelta": relativedelta,
                "context_today": lambda: date(now_local.year, now_local.month, now_local.day),
            },
        )

    def create_gone_worker(self, pid, **vals):
        """A gone HTTP worker of master 103690 on host "vm"."""
        return self.env["async_lab.worker"].create(
            {"host": "vm", "pid": pid, "master_pid": 103690, "role": "http", "state": "gone", **vals}
        )

    def test_last_hour_of_metrics_is_the_last_hour_in_utc(self):
        Metric = self.env["async_lab.metric"]
        Metric.search([]).unlink()
        for minute in ("13:16", "13:30", "14:20"):
            Metric.create({"channel": "root", "minute": f"2026-12-04 {minute}:00", "done": 1})
        # 14:21 UTC, in a browser at UTC+2 (16:21 local).
        domain = self.filter_domain(
            "async_lab.metric", "filter_last_hour", datetime(2026, 12, 4, 16, 21), timedelta(hours=2)
        )
        self.assertEqual(domain, [("minute", ">=", "2026-12-04 13:21:00")])
        self.assertEqual(
            [str(m.minute.time()) for m in Metric.search(domain, order="minute")], ["13:30:00", "14:20:00"]
        )

    def test_group_rows_show_only_what_adds_up(self):
        Worker = self.env["async_lab.worker"]
        for pid, cpu in ((103695, 40.0), (103696, 60.0)):
            self.create_gone_worker(pid, cpu_percent=cpu, jobs=3, requests=10)
        fields = ["pid", "master_pid", "cpu_percent", "limit_request", "jobs", "requests"]
        (group,) = Worker.read_group([("host", "=", "vm")], fields, ["host"])
        self.assertEqual((group["jobs"], group["requests"]), (6, 20))
        self.assertFalse({"pid", "master_pid", "cpu_percent", "limit_request"} & set(group), group)

        Metric = self.env["async_lab.metric"]
        for minute, run in (("13:16", 25.0), ("13:17", 0.5)):
            Metric.create(
                {
                    "channel": "cpu",
                    "minute": f"2026-12-04 {minute}:00",
                    "done": 2,
                    "failed": 1,
                    "wait_p50": 1.0,
                    "wait_p95": 2.0,
                    "run_p50": run,
                    "run_p95": run,
                }
            )
        (group,) = Metric.read_group([("channel", "=", "cpu")], ["done", "failed", "run_p95", "wait_p50"], ["channel"])
        self.assertEqual((group["done"], group["failed"]), (4, 2))
        self.assertFalse({"run_p95", "wait_p50"} & set(group), group)

    def test_identifiers_never_add_up_in_group_rows(self):
        Worker = self.env["async_lab.worker"]
        for pid in (103695, 103696):
            self.create_gone_worker(pid, create_time=1000.0 + pid, jobs=3)
        fields = ["pid", "master_pid", "create_time", "jobs"]
        for groupby in (["host", "role"], ["role"], ["master_pid"]):
            (group,) = Worker.read_group([("host", "=", "vm")], fields, groupby, lazy=False)
            self.assertEqual(group["jobs"], 6, groupby)
            self.assertFalse({"pid", "create_time"} & set(group), group)
            if "master_pid" not in groupby:
                self.assertNotIn("master_pid", group)
        # Every PID of the addon's models, and the other identifiers stored as numbers.
        pids = [
            (model, name)
            for model in ("async_lab.worker", "async_lab.respawn", "async_lab.burst", "queue.job")
            for name, field in self.env[model]._fields.items()
            if field.type == "integer" and name.endswith("pid") and field.store
        ]
        self.assertGreaterEqual(len(pids), 6, pids)
        others = [
            ("async_lab.worker", "create_time"),
            ("queue.job", "async_lab_launch"),
            ("async_lab.experiment.result", "sequence"),
        ]
        for model, name in pids + others:
            self.assertFalse(self.env[model]._fields[name].group_operator, f"{model}.{name}")

    def test_processes_open_as_rows_not_collapsed_groups(self):
        context = safe_eval(self.env.ref("async_lab.async_lab_worker_action").context)
        self.assertFalse([key for key in context if key.startswith("search_default_group")], context)

    def test_pids_print_without_thousands_separators(self):
        # Every PID column of the addon's lists and forms: an identifier, not a quantity.
        views = self.env["ir.ui.view"].search([("model", "like", "async_lab."), ("type", "in", ("tree", "form"))])
        checked = 0
        for view in views:
            arch = etree.fromstring(self.env[view.model].get_view(view.id)["arch"])
            for node in arch.iter("field"):
                field = self.env[view.model]._fields.get(node.get("name"))
                if field is not None and field.type == "integer" and "pid" in field.name:
                    checked += 1
                    options = safe_eval(node.get("options") or "{}", {"false": False, "true": True})
                    self.assertIs(options.get("enable_formatting"), False, f"{view.xml_id}: {field.name}")
        self.assertGreater(checked, 5)
