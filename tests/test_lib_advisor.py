# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import configparser
from pathlib import Path

from odoo.tests import BaseCase

from odoo.addons.queue_job.jobrunner.channels import ChannelManager

from ..lib import advisor
from .common import assert_doctests

EXAMPLE = Path(__file__).resolve().parent.parent / "odoo.conf.example"
MIB = 1024 * 1024


def example_conf(cpu_count):
    """One host's configuration as odoo.conf.example sets it."""
    parser = configparser.ConfigParser(inline_comment_prefixes=(";",))
    parser.read(EXAMPLE)
    options = parser["options"]
    channels = ChannelManager.parse_simple_config(parser["queue_job"]["channels"])
    return {
        "workers": options.getint("workers"),
        "max_cron_threads": options.getint("max_cron_threads"),
        "db_maxconn": options.getint("db_maxconn", 64),
        "limit_time_real": options.getint("limit_time_real"),
        "limit_time_cpu": options.getint("limit_time_cpu"),
        "limit_memory_soft": options.getint("limit_memory_soft"),
        "limit_memory_hard": options.getint("limit_memory_hard"),
        "limit_request": options.getint("limit_request"),
        "server_wide_modules": options["server_wide_modules"].split(","),
        "cpu_count": cpu_count,
        "channels": advisor.normalise({c["name"]: c for c in channels}),
    }


class TestAdvisor(BaseCase):
    """The advisor's rules, on plain values."""

    def test_doctests(self):
        assert_doctests(self, advisor, more_than=40)

    def test_the_example_configuration_gets_no_finding(self):
        load = {
            "runner_alive": True,
            "window": 900,
            "pg_max_connections": 100,
            "pg_reserved_connections": 3,
            "channels": {"root.async_lab.io": {"arrivals": 300, "mean": 0.5, "p95": 1.0, "done": 300, "backlog": 0}},
            "http_rss": [180 * MIB] * 9,
            "http_busy_with_jobs": 0.3,
        }
        for cores in (2, 4):
            with self.subTest(cores=cores):
                self.assertEqual(advisor.advise({"host": example_conf(cores)}, load), [])

    def test_each_finding_has_the_contract_keys_and_a_configuration_line(self):
        conf = dict(example_conf(4), workers=4, server_wide_modules=["base", "web"], limit_memory_soft=100 * MIB)
        conf["channels"] = advisor.normalise({"root": {"capacity": 4}, "root.io": {"capacity": 6}})
        load = {
            "runner_alive": False,
            "window": 60,
            "channels": {"root.io": {"arrivals": 120, "mean": 4.0, "p95": 110.0, "done": 50, "backlog": 40}},
            "http_rss": [150 * MIB],
            "crons_late": [("Mail queue", 3600)],
            "http_busy_with_jobs": 1.0,
        }
        findings = advisor.advise({"host": conf}, load)
        codes = {f["code"] for f in findings}
        self.assertTrue(
            {
                "queue_job_not_server_wide",
                "root_capacity_ge_workers",
                "channel_above_parent",
                "job_duration_near_limit",
                "channel_saturated",
                "workers_vs_cores",
                "memory_soft_below_rss",
                "crons_late",
                "jobs_hold_workers",
            }
            <= codes,
            codes,
        )
        severities = [advisor.SEVERITIES.index(f["severity"]) for f in findings]
        self.assertEqual(severities, sorted(severities), "worst first")
        for f in findings:
            self.assertEqual(set(f), {"code", "severity", "title", "evidence", "fix", "host"})
            self.assertRegex(f["fix"], r"^\w+ = ", f["code"])
            self.assertTrue(f["title"].endswith("."), f["title"])
            self.assertTrue(f["evidence"], f["code"])

    def test_the_fix_of_a_saturated_channel_brings_utilisation_below_one(self):
        conf = {"channels": advisor.normalise({"root": {"capacity": 8}, "root.io": {"capacity": 2}})}
        load = {"window": 600, "channels": {"root.io": {"arrivals": 900, "mean": 2.0, "backlog": 300}}}
        [found] = advisor.check_utilisation(conf, load, "h")
        line = found["fix"].split(" = ", 1)[1]
        fixed = advisor.normalise({c["name"]: c for c in ChannelManager.parse_simple_config(line)})
        capacity = advisor.bound_capacity(fixed, "root.io")
        rho, growth = advisor.utilisation(900, 600, 2.0, capacity)
        self.assertLess(rho, 1)
        self.assertEqual(growth, 0)
        self.assertIsNotNone(advisor.drain_seconds(300, 900, 600, 2.0, capacity))
