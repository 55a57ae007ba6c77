# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
from datetime import timedelta

from odoo import _, api, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from odoo.addons.queue_job.jobrunner.channels import ChannelManager
from odoo.addons.queue_job.jobrunner.runner import PG_ADVISORY_LOCK_ID

from ..lib import advisor, processes
from ..lib.groups import GROUP_USER
from ..lib.times import iso, utcnow
from .queue_job import ACTIVE_STATES, DONE_STAGES

#: Minutes of load the advisor judges.
ADVICE_WINDOW = 15
#: Longest window the advisor judges, in minutes: a day (a capacity question is about recent load).
MAX_ADVICE_WINDOW = 24 * 60
#: A user whose web client reported presence this recently is online.
ONLINE_MINUTES = 5
MIB = 1024 * 1024


class AsyncLabAdvisor(models.AbstractModel):
    """The capacity advisor: gathers each node's configuration and the
    measured load, and lets ``lib/advisor.py`` judge them."""

    _name = "async_lab.advisor"
    _description = "Async Lab capacity advisor"

    @api.model
    def get_advice(self, window=ADVICE_WINDOW, now=None):
        """``{"generated_at", "window_minutes", "hosts", "findings", "checked"}``, findings worst first."""
        if not self.env.su and not self.env.user.has_group(GROUP_USER):
            raise AccessError(_("The capacity advisor needs the Async Lab / User group."))
        now = now or utcnow()
        stats = self.env["async_lab.stats"].get_stats(window, now)
        nodes = self._nodes()
        load = self._load(stats, nodes, window, now)
        confs = {label: node["conf"] for label, node in nodes.items()}
        load["by_host"] = {label: self._node_load(label, nodes, load) for label in nodes}
        findings = advisor.advise(confs, load)
        return {
            "generated_at": iso(now),
            "window_minutes": window,
            "hosts": [
                {
                    "host": label,
                    "hostname": node["host"],
                    "master_pid": node["master_pid"],
                    "http_workers_alive": len(node["http_rss"]),
                    "config": {k: v for k, v in node["conf"].items() if k != "channels"},
                    "channels": node["conf"].get("channels_text"),
                }
                for label, node in sorted(nodes.items())
            ],
            "measured": {
                "runner_alive": load["runner_alive"],
                "http_busy_with_jobs": load["http_busy_with_jobs"],
                "users_online": load["users_online"],
                "crons_late": [
                    {"cron": n, "late_seconds": int(s), "interval_seconds": int(i)} for n, s, i in load["crons_late"]
                ],
                "runner_nodes": load["runner_nodes"],
                "pg_max_connections": load["pg_max_connections"],
                "user_impact": load["user_impact"],
                "channels": load["channels"],
            },
            "findings": findings,
            "checked": list(advisor.CHECKED) if nodes else [],
        }

    # ------------------------------------------------------------------
    # Configuration, per node
    # ------------------------------------------------------------------
    @api.model
    def _nodes(self):
        """``{label: {"host", "master_pid", "conf", "http_rss", "http_vms"}}`` of the nodes alive now.

        A node is one Odoo master; its configuration is what its own processes
        report. Its label is its configured name (``async_lab_node``), else
        its host; two nodes on one host are told apart by their master's PID
        (:func:`~..lib.processes.node_labels`).
        """
        self.env["async_lab.worker"].flush_model()
        self.env.cr.execute(
            """SELECT host, master_pid, role, rss_mb, vms_mb, server_config
                 FROM async_lab_worker
                WHERE state = 'alive' AND self_reported AND server_config IS NOT NULL
                ORDER BY host, master_pid, role = 'http' DESC, last_seen DESC"""
        )
        nodes = {}
        for host, master, role, rss_mb, vms_mb, seen in self.env.cr.fetchall():
            node = nodes.setdefault(
                (host, master), {"host": host, "master_pid": master, "conf": None, "http_rss": [], "http_vms": []}
            )
            if node["conf"] is None:
                node["conf"] = self._conf(seen)
            if role == "http" and rss_mb:
                node["http_rss"].append(int(rss_mb * MIB))
            if role == "http" and vms_mb:
                node["http_vms"].append(int(vms_mb * MIB))
        labels = processes.node_labels({key: node["conf"].get("async_lab_node") for key, node in nodes.items()})
        return {labels[key]: node for key, node in nodes.items()}

    @api.model
    def _runner_channels(self):
        """``(channels, source)``: the job runner's channels, ``{full name: config}`` as the runner parses them.

        queue_job's runner is the only reader of its channel configuration, and
        it runs in one node (the one whose runner holds queue_job's lock; a
        second node's runner stands by), whose configuration may differ from
        this process's. Its node is found as the stats find the runner: the
        alive job runner seen last, else the last one seen at all; its
        configuration is what that node's processes report ("runner").
        Without a runner node that reported one, this process's own ("local").
        """
        self.env["async_lab.worker"].flush_model()
        self.env.cr.execute(
            """WITH runner AS (
                   SELECT host, master_pid FROM async_lab_worker
                    WHERE role = 'jobrunner' OR (role = 'threaded' AND threads @> '[{"role": "jobrunner"}]'::jsonb)
                    ORDER BY state = 'alive' DESC, last_seen DESC LIMIT 1
               )
               SELECT w.server_config FROM async_lab_worker w JOIN runner r USING (host, master_pid)
                WHERE w.self_reported AND w.server_config IS NOT NULL
                ORDER BY w.state = 'alive' DESC, w.last_seen DESC LIMIT 1"""
        )
        row = self.env.cr.fetchone()
        if row:
            return self._conf(row[0])["channels"] or {}, "runner"
        return advisor.normalise(self.env["async_lab.stats"]._channel_config()[1]), "local"

    @api.model
    def _conf(self, seen):
        """One node's configuration for the rules, its channels parsed as the runner does."""
        conf = dict(seen)
        text = conf.pop("channels", None)
        conf["channels_text"] = text
        conf["channels"] = None
        if text and "queue_job" in (conf.get("server_wide_modules") or []):
            try:
                conf["channels"] = advisor.normalise({c["name"]: c for c in ChannelManager.parse_simple_config(text)})
            except Exception:  # the runner refuses it too: judged as no channels
                conf["channels"] = None
        return conf

    # ------------------------------------------------------------------
    # Load, measured in the database
    # ------------------------------------------------------------------
    @api.model
    def _load(self, stats, nodes, window, now):
        since = now - timedelta(minutes=window)
        empty = {"done": 0, "p50": None, "p95": None, "backlog": 0, "arrivals": 0, "mean": None}
        channels = {}
        for row in stats["channels"]:
            run = row["latency"]["started_done"]
            channels[row["name"]] = dict(
                empty, done=row["done"], p50=run["p50"], p95=run["p95"], backlog=row["pending"] + row["enqueued"]
            )
        busy = 0.0
        for channel, arrivals, mean, busy_seconds, running_max, killed in self._channel_load(since, now, channels):
            entry = channels.setdefault(channel, dict(empty))
            entry["arrivals"] += arrivals or 0
            if mean is not None:
                entry["mean"] = round(mean, 4)
            entry["running_max"] = round(running_max, 1) if running_max is not None else None
            entry["killed"] = killed or 0
            busy += busy_seconds or 0.0
        http_workers = sum(len(node["http_rss"]) for node in nodes.values())
        pg = self._postgres()
        runner_nodes = self._runner_nodes(nodes)
        return {
            "window": window * 60,
            "channels": channels,
            "runner_alive": self._runner_alive(stats),
            "runner_hosts": [stats["runner"]["host"]] if stats["runner"]["host"] else [],
            "runner_nodes": runner_nodes,
            "http_busy_with_jobs": round(busy / (window * 60 * http_workers), 3) if http_workers else None,
            "users_online": self._users_online(now),
            "user_impact": self._matching_impact(nodes, runner_nodes),
            "crons_late": self._crons_late(now),
            **pg,
        }

    @api.model
    def _runner_nodes(self, nodes, certain=False):
        """Labels of the nodes whose job runner serves this database.

        The one whose runner process holds queue_job's advisory lock (its
        connection's ``application_name`` is Odoo's ``odoo-<pid>``); when no
        holder is known that way, those with a runner process alive (another
        node's runner only stands by, waiting for the lock). ``certain``
        (the dashboard's *job runner* badge) keeps that guess only when one
        node runs a runner: of several, it cannot tell which holds the lock.
        """
        self.env.cr.execute(
            SQL(
                """SELECT w.host, w.master_pid,
                          EXISTS(SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                                  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                                    AND l.classid::bigint = %(high)s AND l.objid::bigint = %(low)s
                                    AND a.application_name = 'odoo-' || w.pid)
                     FROM async_lab_worker w
                    WHERE w.state = 'alive' AND (w.role = 'jobrunner'
                          OR (w.role = 'threaded' AND w.threads @> '[{"role": "jobrunner"}]'::jsonb))""",
                high=PG_ADVISORY_LOCK_ID >> 32,
                low=PG_ADVISORY_LOCK_ID & 0xFFFFFFFF,
            )
        )
        rows = self.env.cr.fetchall()
        label_of = {(node["host"], node["master_pid"]): label for label, node in nodes.items()}
        holders = sorted({label_of[h, m] for h, m, holds in rows if holds and (h, m) in label_of})
        running = sorted({label_of[h, m] for h, m, _holds in rows if (h, m) in label_of})
        if holders or (certain and len(running) > 1):
            return holders
        return running

    @api.model
    def _matching_impact(self, nodes, runner_nodes):
        """The latest user-impact run, if it was measured with the root capacity and HTTP workers
        the runner's node has now (other figures would be evidence of another setting); else None."""
        impact = self.env["async_lab.experiment"]._latest_impact()
        if not impact:
            return None
        for label in runner_nodes or list(nodes):
            conf = nodes[label]["conf"]
            root = advisor.capacity_of(conf.get("channels") or {}, "root")
            if (impact.get("root_capacity"), impact.get("http_workers")) == (root, conf.get("workers")):
                return impact
        return None

    @api.model
    def _runner_alive(self, stats):
        """A job runner serves this database: one reported itself alive, or one holds queue_job's lock."""
        return stats["runner"]["alive"] or self.env["async_lab.deployment"]._runner_lock_held()

    @api.model
    def _node_load(self, label, nodes, load):
        """What is measured for one node: its workers' memory; the connections of other databases
        and of the other nodes (they share PostgreSQL's max_connections)."""
        others = sum(advisor.connections_needed(n["conf"]) for other, n in nodes.items() if other != label)
        return {
            "http_rss": nodes[label]["http_rss"],
            "http_vms": nodes[label]["http_vms"],
            "pg_other_connections": load["pg_other_connections"] + others,
        }

    @api.model
    def _channel_load(self, since, now, channels):
        """Per channel of ``channels``: jobs created in the window, mean run time of its done jobs,
        the seconds of HTTP worker time jobs held in the window (done and running), the longest
        run of a job still started, and the jobs of the window whose worker the watchdog killed
        (their last start was on a worker that died of limit_time_real).

        All aggregated in SQL, each part on ``channel = ANY(...)`` so that the partial indexes
        of done and failed jobs serve it.
        """
        self.env["queue.job"].flush_model()
        self.env.cr.execute(self._channel_load_query(since, now, channels))
        return self.env.cr.fetchall()

    @api.model
    def _channel_load_query(self, since, now, channels):
        """The statement of :meth:`_channel_load`."""
        run = SQL(DONE_STAGES["started_done"])
        return SQL(
            """SELECT channel, sum(arrivals), max(mean), sum(busy), max(running_max), max(killed)
                     FROM (
                       SELECT channel, count(*) FILTER (WHERE date_created >= %(since)s) AS arrivals,
                              avg(%(run)s) AS mean,
                              sum(date_part('epoch', date_done - greatest(date_started, %(since)s))) AS busy,
                              NULL::float AS running_max, NULL::bigint AS killed
                         FROM queue_job
                        WHERE state = 'done' AND channel = ANY(%(channels)s)
                          AND date_done >= %(since)s AND date_started IS NOT NULL
                        GROUP BY channel
                       UNION ALL
                       SELECT channel, count(*) FILTER (WHERE date_created >= %(since)s), NULL,
                              sum(date_part('epoch', %(now)s - greatest(date_started, %(since)s)))
                                  FILTER (WHERE state = 'started' AND date_started IS NOT NULL),
                              max(date_part('epoch', %(now)s - date_started)) FILTER (WHERE state = 'started'),
                              NULL
                         FROM queue_job
                        WHERE state = ANY(%(active)s) AND channel = ANY(%(channels)s)
                        GROUP BY channel
                       UNION ALL
                       SELECT channel, count(*) FILTER (WHERE date_created >= %(since)s), NULL, NULL, NULL, NULL
                         FROM queue_job
                        WHERE state = 'failed' AND channel = ANY(%(channels)s) AND date_started >= %(since)s
                        GROUP BY channel
                       UNION ALL
                       SELECT job.channel, 0, NULL, NULL, NULL, count(*)
                         FROM queue_job job
                        WHERE job.channel = ANY(%(channels)s) AND job.date_started >= %(since)s
                          AND (job.state = ANY(%(active)s) OR job.state = 'failed') AND job.worker_pid IS NOT NULL
                          AND EXISTS(SELECT 1 FROM async_lab_worker w
                                      WHERE w.pid = job.worker_pid AND w.exit_reason = 'time_limit_real'
                                        AND w.started_at <= job.date_started AND w.gone_at >= job.date_started)
                        GROUP BY job.channel
                     ) AS parts
                    GROUP BY channel""",
            since=since,
            now=now,
            run=run,
            channels=sorted(channels),
            active=list(ACTIVE_STATES),
        )

    @api.model
    def _users_online(self, now):
        self.env.cr.execute(
            "SELECT count(DISTINCT user_id) FROM bus_presence WHERE last_presence >= %s",
            [now - timedelta(minutes=ONLINE_MINUTES)],
        )
        return self.env.cr.fetchone()[0]

    @api.model
    def _crons_late(self, now):
        """``[(name, seconds late, interval seconds)]`` of the active crons whose next call is past."""
        self.env["ir.cron"].flush_model(
            ["active", "numbercall", "nextcall", "cron_name", "interval_number", "interval_type"]
        )
        self.env.cr.execute(
            """SELECT cron_name, date_part('epoch', %s - nextcall), interval_number, interval_type FROM ir_cron
                WHERE active AND numbercall != 0 AND nextcall < %s ORDER BY nextcall""",
            [now, now],
        )
        return [
            (name, seconds, advisor.cron_interval(number, unit))
            for name, seconds, number, unit in self.env.cr.fetchall()
        ]

    @api.model
    def _postgres(self):
        """PostgreSQL's connection limits, and the connections of other databases."""
        self.env.cr.execute(
            """SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int,
                      (SELECT count(*) FROM pg_stat_activity
                        WHERE backend_type = 'client backend' AND datname IS DISTINCT FROM current_database())"""
        )
        limit, reserved, other = self.env.cr.fetchone()
        return {"pg_max_connections": limit, "pg_reserved_connections": reserved, "pg_other_connections": other}
