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
        conf = dict(example_conf(4), workers=4, limit_memory_soft=100 * MIB)
        conf["channels"] = advisor.normalise({"root": {"capacity": 4}, "root.io": {"capacity": 6}})
        web = dict(example_conf(4), server_wide_modules=["base", "web"])
        load = {
            "runner_alive": True,
            "runner_nodes": ["host"],
            "window": 60,
            "channels": {"root.io": {"arrivals": 120, "mean": 4.0, "p95": 110.0, "done": 50, "backlog": 40}},
            "http_rss": [150 * MIB],
            "http_vms": [150 * MIB],
            "crons_late": [("Mail queue", 3600, 60)],
            "http_busy_with_jobs": 1.0,
        }
        findings = advisor.advise({"host": conf, "web": web}, load)
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

    def test_channels_are_judged_on_the_runner_node_only(self):
        runner = dict(example_conf(4), workers=4, channels_text="root:4")
        runner["channels"] = advisor.normalise({"root": {"capacity": 4}})
        # A web-only node: root:0 disables its runner, its channels are not capacities.
        web = dict(example_conf(4), workers=2, channels_text="root:0,root.io:5")
        web["channels"] = advisor.normalise({"root": {"capacity": 0}, "root.io": {"capacity": 5}})
        load = {"runner_alive": True, "runner_nodes": ["runner"], "window": 60, "http_busy_with_jobs": 0.9}
        channel_codes = {"root_capacity_ge_workers", "root_capacity_one", "channel_above_parent", "jobs_hold_workers"}
        found = {(f["host"], f["code"]) for f in advisor.advise({"runner": runner, "web": web}, load)}
        self.assertIn(("runner", "root_capacity_ge_workers"), found)
        self.assertFalse({code for host, code in found if host == "web"} & channel_codes, found)
        # The runner node is the one named, even when another would run one too.
        found = {
            (f["host"], f["code"]) for f in advisor.advise({"a": runner, "b": runner}, load | {"runner_nodes": ["b"]})
        }
        self.assertEqual({host for host, code in found if code in channel_codes}, {"b"})
        # No runner known: the nodes that would start one, not the root:0 one.
        found = {
            (f["host"], f["code"]) for f in advisor.advise({"runner": runner, "web": web}, {"runner_alive": False})
        }
        self.assertIn(("runner", "root_capacity_ge_workers"), found)
        self.assertFalse({code for host, code in found if host == "web"} & channel_codes, found)

    def test_capacity_zero_is_unbounded(self):
        channels = advisor.normalise({"root": {"capacity": 2}, "root.io": {"capacity": 0}})
        self.assertIsNone(advisor.capacity_of(channels, "root.io"))
        self.assertEqual(advisor.bound_capacity(channels, "root.io"), 2)
        self.assertEqual(advisor.check_sub_channels({"channels": channels}, {}, "h"), [])
        # Kept as 0 in the line a fix proposes.
        self.assertEqual(advisor.channels_line(channels, root=3), "channels = root:3,root.io:0")
        # Its jobs saturate the root's 2 slots (2 s of work a second), not 1 slot.
        load = {"window": 60, "channels": {"root.io": {"arrivals": 60, "mean": 2.0, "backlog": 0}}}
        [found] = advisor.check_utilisation({"channels": channels}, load, "h")
        self.assertEqual((found["evidence"]["capacity"], found["evidence"]["rho"]), (2, 1.0))

    def test_late_crons_are_judged_for_the_database_against_their_interval(self):
        hosts = {"a": dict(example_conf(4), max_cron_threads=1), "b": dict(example_conf(4), max_cron_threads=0)}
        load = {"runner_alive": True, "crons_late": [("Mail queue", 900, 60), ("Daily digest", 1800, 86400)]}
        [late] = [f for f in advisor.advise(hosts, load) if f["code"] == "crons_late"]
        self.assertIsNone(late["host"])
        self.assertEqual(late["severity"], "warning")  # node a's cron worker runs the crons of b too
        self.assertEqual(late["evidence"]["max_cron_threads"], 1)
        self.assertEqual([c["cron"] for c in late["evidence"]["late"]], ["Mail queue"])
        self.assertEqual((late["fix"], late["evidence"]["fix_node"]), ("max_cron_threads = 1", "b"))
        # A daily cron half an hour behind, a 10-minute one 5 minutes behind: on time.
        on_time = dict(load, crons_late=[("Daily digest", 1800, 86400), ("Every 10 minutes", 300, 600)])
        self.assertNotIn("crons_late", {f["code"] for f in advisor.advise(hosts, on_time)})

    def test_queue_job_not_server_wide_is_information_when_a_runner_serves_the_database(self):
        web = dict(example_conf(4), server_wide_modules=["base", "web"])
        [alone] = [f for f in advisor.advise({"web": web}, {"runner_alive": False}) if f["host"] == "web"]
        self.assertEqual(alone["severity"], "critical")
        [beside] = [f for f in advisor.advise({"web": web}, {"runner_alive": True}) if f["host"] == "web"]
        self.assertEqual((beside["code"], beside["severity"]), ("queue_job_not_server_wide", "info"))

    def test_a_saturated_channel_says_how_long_the_backlog_takes_at_the_proposed_capacity(self):
        conf = {"workers": 9, "channels": advisor.normalise({"root": {"capacity": 6}, "root.io": {"capacity": 1}})}
        load = {"window": 60, "channels": {"root.io": {"arrivals": 60, "mean": 2.0, "backlog": 120}}}
        [found] = advisor.check_utilisation(conf, load, "h")
        self.assertEqual(found["evidence"]["rho"], 2.0)
        # 2 s of work a second at 0.8: 3 slots, which run 1.5 jobs a second for 1 arriving.
        self.assertEqual(found["evidence"]["proposed_capacity"], 3)
        self.assertEqual(found["evidence"]["drain_seconds"], 240.0)
        self.assertEqual(found["fix"], "channels = root:6,root.io:3")

    def test_a_parent_channel_is_judged_on_the_sum_of_its_sub_channels(self):
        channels = advisor.normalise(
            {
                "root": {"capacity": 8},
                "root.a": {"capacity": 2},
                "root.a.x": {"capacity": 2},
                "root.a.y": {"capacity": 2},
            }
        )
        stats = {"arrivals": 60, "mean": 1.5, "backlog": 5}
        load = {"window": 60, "channels": {"root.a.x": stats, "root.a.y": stats}}
        [found] = advisor.check_utilisation({"workers": 0, "channels": channels}, load, "h")
        self.assertEqual((found["evidence"]["channel"], found["evidence"]["rho"]), ("root.a", 1.5))
        self.assertEqual(found["evidence"]["sub_channels"], ["root.a.x", "root.a.y"])
        self.assertEqual(found["evidence"]["backlog"], 10)
        self.assertIn("root.a:4", found["fix"])

    def test_the_suggested_root_capacity_leaves_an_http_worker_free(self):
        self.assertIsNone(advisor.free_root(1))
        for workers in range(2, 20):
            self.assertLess(advisor.free_root(workers), workers)
        one = {"workers": 1, "channels": advisor.normalise({"root": {"capacity": 1}})}
        [found] = advisor.check_root_capacity(one, {}, "h")
        self.assertEqual(found["fix"], "workers = 2")
        # Saturated on 4 workers: root stops at 2, and the finding says how many workers the load needs.
        conf = {"workers": 4, "channels": advisor.normalise({"root": {"capacity": 2}, "root.io": {"capacity": 1}})}
        load = {"window": 60, "channels": {"root.io": {"arrivals": 120, "mean": 2.0, "backlog": 10}}}
        found = {f["evidence"]["channel"]: f for f in advisor.check_utilisation(conf, load, "h")}
        for f in found.values():
            line = f["fix"].split(" = ", 1)[1]
            if f["fix"].startswith("channels"):
                fixed = advisor.normalise({c["name"]: c for c in ChannelManager.parse_simple_config(line)})
                self.assertLessEqual(advisor.capacity_of(fixed, "root"), advisor.free_root(4), f["fix"])
            else:
                self.assertEqual(f["fix"], "workers = %d" % f["evidence"]["workers_needed"])
        self.assertEqual(found["root.io"]["evidence"]["proposed_capacity"], 2)
        self.assertEqual(found["root.io"]["evidence"]["workers_needed"], advisor.workers_for_root(5))

    def test_the_memory_rule_compares_the_virtual_size_and_raises_the_hard_limit(self):
        conf = {"workers": 2, "limit_memory_soft": 2048 * MIB, "limit_memory_hard": 2560 * MIB}
        # RSS well below, VMS above: Odoo's prefork recycles the worker (it reads memory_info().vms).
        load = {"http_rss": [300 * MIB, 300 * MIB], "http_vms": [2200 * MIB, 1800 * MIB]}
        [found] = advisor.check_memory(conf, load, "h")
        self.assertEqual((found["evidence"]["vms_max"], found["evidence"]["workers_above"]), (2200 * MIB, 1))
        soft, hard = found["fix"].split("\n")
        soft, hard = int(soft.split(" = ")[1]), int(hard.split(" = ")[1])
        self.assertGreaterEqual(soft, 2200 * MIB * 1.5)
        self.assertTrue(hard > soft and hard > 2560 * MIB, found["fix"])
        self.assertTrue(found["fix"].startswith("limit_memory_soft = ") and "\nlimit_memory_hard = " in found["fix"])
        self.assertEqual(advisor.check_memory(conf, {"http_rss": [3000 * MIB], "http_vms": [1000 * MIB]}, "h"), [])

    def test_jobs_the_watchdog_kills_are_found_without_a_done_p95(self):
        conf = {"workers": 4, "limit_time_real": 60}
        killed = {"root.cpu": {"done": 0, "p95": None, "running_max": None, "killed": 4}}
        [found] = advisor.check_job_durations(conf, {"channels": killed}, "h")
        self.assertEqual((found["severity"], found["evidence"]["killed_by_watchdog"]), ("critical", 4))
        self.assertEqual(found["fix"], "limit_time_real = 120")
        running = {"root.cpu": {"done": 0, "p95": None, "running_max": 55.0, "killed": 0}}
        [found] = advisor.check_job_durations(conf, {"channels": running}, "h")
        self.assertEqual((found["severity"], found["evidence"]["running_seconds"]), ("warning", 55.0))
