# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import SQL, config

from ..lib import catalogue, dashboard, workloads
from ..lib.groups import GROUP_MANAGER, GROUP_USER
from ..lib.times import iso, to_epoch
from .async_lab_burst import MAX_JOBS
from .async_lab_stats import DEFAULT_WINDOW, MAX_WINDOW
from .async_lab_workload_mixin import bounded

#: Minutes of the swimlane timeline.
DEFAULT_LANE_MINUTES = 10
MAX_LANE_MINUTES = 60
#: Most bars the swimlane draws; the newest are kept.
MAX_BARS = 1500
#: Respawns shown on the process map: the last hour's.
RESPAWN_MINUTES = 60


class AsyncLabDashboard(models.AbstractModel):
    """The live dashboard's data, in one call.

    It reads the job statistics of ``async_lab.stats`` (never recomputed
    here), the process registry, and the bounded timeline of recent jobs.
    """

    _name = "async_lab.dashboard"
    _description = "Async Lab dashboard"

    @api.model
    def _check_group(self, group):
        if not self.env.user.has_group(group):
            raise AccessError(_("This needs the %(group)s group.", group=self.env.ref(group).sudo().full_name))

    @api.model
    def get_data(self, window=DEFAULT_WINDOW, lane_minutes=DEFAULT_LANE_MINUTES):
        """Everything the dashboard shows, as one plain dict."""
        self._check_group(GROUP_USER)
        window = bounded("window", window, 1, MAX_WINDOW)
        lane_minutes = bounded("lane_minutes", lane_minutes, 1, MAX_LANE_MINUTES)
        now = fields.Datetime.now()
        stats = self.env["async_lab.stats"].get_stats(window, now)
        rows = self._process_rows(now)
        lane_since = now - timedelta(minutes=lane_minutes)
        jobs, truncated = self._timeline_jobs([c["name"] for c in stats["channels"]], lane_since, now)
        by_pid = {}
        for row in sorted(rows, key=lambda r: r["state"] == "gone", reverse=True):
            by_pid[row["pid"]] = row  # a live process wins over a gone one with the same PID
        return {
            "stats": stats,
            "processes": self._process_map(rows, now),
            "runner_threads": dashboard.runner_threads(rows),
            "swimlanes": {
                "since": iso(lane_since),
                "until": iso(now),
                "minutes": lane_minutes,
                "lanes": dashboard.swimlanes(jobs, by_pid),
                "truncated": truncated,
                "max_bars": MAX_BARS,
            },
            "lab": self._lab(),
            "me": {
                "pid": os.getpid(),
                "is_manager": self.env.user.has_group(GROUP_MANAGER),
                "queue_job_server_wide": "queue_job" in config["server_wide_modules"],
            },
            "labels": {
                "roles": self._selection_labels("async_lab.worker", "role"),
                "exit_reasons": self._selection_labels("async_lab.worker", "exit_reason"),
            },
            "burst_form": self._burst_form(),
            # What is wrong with how this server is deployed (async_lab.deployment).
            "banners": self.env["async_lab.deployment"]._banners(stats["runner"]),
            # The server's constants, so that the client mirrors none.
            "constants": {
                "default_lane_minutes": DEFAULT_LANE_MINUTES,
                "max_lane_minutes": MAX_LANE_MINUTES,
                "gone_visible_seconds": dashboard.GONE_VISIBLE,
            },
        }

    # ------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------
    @api.model
    def _process_rows(self, now):
        """Live and stale processes, plus those gone long enough ago to fade out,
        and for an hour the master of a node that went silent (gone without
        a stop of its own): the tree says it stopped reporting."""
        self.env.cr.execute(
            """SELECT id, host, pid, master_pid, role, state, exit_reason, rss_mb, cpu_percent,
                      cpu_seconds, requests, jobs, crons, threads, replaces_id,
                      extract(epoch FROM started_at) AS started_at,
                      extract(epoch FROM gone_at) AS gone_at
                 FROM async_lab_worker
                WHERE state != 'gone' OR gone_at >= %s
                   OR (role IN ('master', 'threaded') AND gone_at >= %s
                       AND (exit_reason IS NULL OR exit_reason NOT IN %s))""",
            [
                now - timedelta(seconds=dashboard.GONE_VISIBLE),
                now - timedelta(seconds=dashboard.SILENT_NODE_VISIBLE),
                dashboard.MASTER_STOPS,
            ],
        )
        rows = self.env.cr.dictfetchall()
        for row in rows:
            for key in ("started_at", "gone_at"):
                row[key] = float(row[key]) if row[key] is not None else None
        return rows

    @api.model
    def _process_map(self, rows, now):
        """Hosts -> nodes (servers) -> processes, each node named as the advisor
        names it, with whether its runner holds queue_job's lock and whether it
        stopped reporting."""
        hosts = dashboard.process_map(rows, self._recent_respawns(now), to_epoch(now))
        Advisor = self.env["async_lab.advisor"]
        nodes = Advisor._nodes()
        runners = set(Advisor._runner_nodes(nodes, certain=True))
        labels = {(node["host"], node["master_pid"]): label for label, node in nodes.items()}
        dashboard.annotate_nodes(hosts, labels, {key for key, label in labels.items() if label in runners})
        return hosts

    @api.model
    def _recent_respawns(self, now):
        self.env.cr.execute(
            """SELECT new_worker_id, old_pid, new_pid, reason, extract(epoch FROM respawned_at) AS respawned_at
                 FROM async_lab_respawn
                WHERE respawned_at >= %s AND new_worker_id IS NOT NULL""",
            [now - timedelta(minutes=RESPAWN_MINUTES)],
        )
        respawns = self.env.cr.dictfetchall()
        for respawn in respawns:
            respawn["respawned_at"] = float(respawn["respawned_at"]) if respawn["respawned_at"] else None
        return respawns

    @api.model
    def _timeline_query(self, channels, since):
        """Jobs that ran since ``since``: at most MAX_BARS + 1 of each kind, on indexes only.

        Done jobs come through the (channel, date_done, date_created) index,
        running and failed ones through the state index. queue_job records
        no end for a failed job: it is drawn as a mark where it started.
        """
        return SQL(
            """
            (SELECT id, channel, state, worker_pid, date_started, date_done AS date_end,
                    async_lab_burst_id, name, retry
               FROM queue_job
              WHERE channel = ANY(%(channels)s) AND date_done >= %(since)s AND date_started IS NOT NULL
              ORDER BY date_done DESC LIMIT %(limit)s)
            UNION ALL
            (SELECT id, channel, state, worker_pid, date_started, NULL, async_lab_burst_id, name, retry
               FROM queue_job
              WHERE state = 'started'
              ORDER BY date_started DESC LIMIT %(limit)s)
            UNION ALL
            (SELECT id, channel, state, worker_pid, date_started, date_started,
                    async_lab_burst_id, name, retry
               FROM queue_job
              WHERE state = 'failed' AND channel = ANY(%(channels)s) AND date_started >= %(since)s
              ORDER BY date_started DESC LIMIT %(limit)s)
            """,
            channels=list(channels),
            since=since,
            limit=MAX_BARS + 1,
        )

    @api.model
    def _timeline_jobs(self, channels, since, now):
        """The newest MAX_BARS jobs of the timeline, and whether there were more."""
        self.env["queue.job"].flush_model()
        self.env.cr.execute(self._timeline_query(channels, since))
        rows = self.env.cr.dictfetchall()
        rows.sort(key=lambda r: r["date_end"] or now, reverse=True)
        # Other jobs' descriptions may hold business data.
        all_names = self.env.user.has_group("queue_job.group_queue_job_manager")
        jobs = [
            {
                "id": row["id"],
                "channel": row["channel"],
                "state": row["state"],
                "pid": row["worker_pid"],
                "start": iso(max(row["date_started"], since)),
                "started": iso(row["date_started"]),
                "end": iso(row["date_end"]),
                "burst_id": row["async_lab_burst_id"],
                "retry": row["retry"],
                "name": row["name"] if all_names or row["async_lab_burst_id"] else None,
            }
            for row in rows[:MAX_BARS]
        ]
        return jobs, len(rows) > MAX_BARS

    @api.model
    def _lab(self):
        Experiment = self.env["async_lab.experiment"]
        return {
            "latest": Experiment.get_latest_results(),
            "presets": Experiment.get_presets(),
        }

    @api.model
    def _selection_labels(self, model, field_name):
        """{value: label} of a selection field, in the user's language (catalogue labels are English)."""
        return dict(self.env[model]._fields[field_name]._description_selection(self.env))

    def _param_label(self, name):
        """The label of a workload parameter: that of the field which stores it."""
        field = self.env["async_lab.workload.mixin"]._fields.get(name)
        return field._description_string(self.env) if field else name

    @api.model
    def _burst_form(self):
        """Choices of the quick burst form: workloads, their one parameter, channels."""
        choices = []
        for name in catalogue.user_workloads():  # not flaky: its attempt is no field
            spec = workloads.WORKLOADS[name]
            choices.append(
                {
                    "name": name,
                    "summary": spec.summary,
                    "kind": spec.kind,
                    "channel": catalogue.default_channel(name),
                    "params": [
                        {
                            "name": p.name,
                            "label": self._param_label(p.name),
                            "min": p.minimum,
                            "max": p.maximum,
                            "default": p.default,
                            "description": p.description,
                        }
                        for p in spec.params
                    ],
                }
            )
        return {
            "workloads": choices,
            "channels": [
                {"name": name, "label": label}
                for name, label in self._selection_labels("async_lab.experiment", "impact_channel").items()
            ],
            "max_jobs": MAX_JOBS,
        }

    # ------------------------------------------------------------------
    # Actions (Managers: they create load)
    # ------------------------------------------------------------------
    @api.model
    def launch_burst(self, workload, count, channel, params=None):
        """Create and launch a burst; return ``{"burst_id", "job_uuids"}``."""
        self._check_group(GROUP_MANAGER)
        if params is not None and not isinstance(params, dict):
            raise ValidationError(_("params must be a mapping of parameter names to integers"))
        # The form's input, checked under the labels the form shows.
        count = bounded(_("Jobs"), count, 1, MAX_JOBS)
        if workload in workloads.WORKLOADS:
            params = dict(params or {})
            for param in workloads.WORKLOADS[workload].params:
                if param.name in params:
                    params[param.name] = bounded(
                        self._param_label(param.name), params[param.name], param.minimum, param.maximum
                    )
        burst, uuids = self.env["async_lab.burst"].api_create_and_launch(
            workload, params or {}, count=count, channel=channel or None
        )
        self.env["async_lab.stats"]._notify_dashboard("burst", {"burst_id": burst.id})
        return {"burst_id": burst.id, "job_uuids": uuids, "channel": burst.channel}
