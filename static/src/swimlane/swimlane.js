/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, useState} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";

import {formatDuration} from "../utils/format";
import {fitRange, layoutLane, peakConcurrency, timeTicks} from "../utils/lanes";

const {DateTime} = luxon;

/** Height of one row of bars, in px (a threaded process may need several rows). */
export const ROW_HEIGHT = 18;
/** Tick labels stop short of the right end, where "now" is written (in %). */
const NOW_LABEL_ROOM = 94;

/**
 * The last minutes as a timeline: one lane per worker PID, one bar per job
 * from its start to its end, coloured by channel. Bars side by side in
 * different lanes ran in parallel; a sequential channel never overlaps
 * itself.
 */
export class Swimlane extends Component {
    static template = "async_lab.Swimlane";
    static props = {
        swimlanes: Object,
        colors: Object,
        channels: Array,
        labels: Object,
        /** Start the timeline at the first job shown rather than at the start of its window. */
        fit: {type: Boolean, optional: true},
        slots: {type: Object, optional: true},
    };

    setup() {
        this.action = useService("action");
        this.orm = useService("orm");
        this.rowHeight = ROW_HEIGHT;
        this.selection = useState({job: null, why: null, error: null});
    }

    get timeline() {
        const since = Date.parse(this.props.swimlanes.since);
        const t1 = Date.parse(this.props.swimlanes.until);
        const starts = this.props.swimlanes.lanes.flatMap((lane) =>
            lane.jobs.map((job) => Date.parse(job.start))
        );
        const t0 = this.props.fit ? fitRange(starts, since, t1) : since;
        const lanes = this.props.swimlanes.lanes.map((lane) => ({
            ...lane,
            ...layoutLane(lane.jobs, t0, t1),
        }));
        const byChannel = {};
        const all = [];
        for (const lane of lanes) {
            for (const job of lane.jobs) {
                const interval = {
                    start: Date.parse(job.start),
                    end: job.end ? Date.parse(job.end) : t1,
                };
                (byChannel[job.channel] ||= []).push(interval);
                all.push(interval);
            }
        }
        const sequential = new Set(
            this.props.channels.filter((c) => c.sequential).map((c) => c.name)
        );
        const legend = Object.keys(byChannel)
            .sort()
            .map((name) => ({
                name,
                color: this.props.colors[name] || "#999",
                jobs: byChannel[name].length,
                peak: peakConcurrency(byChannel[name]),
                sequential: sequential.has(name),
            }));
        const ticks = timeTicks(t0, t1).map((tick) => ({
            ...tick,
            // No label under the "now" one at the right end.
            label:
                tick.left < NOW_LABEL_ROOM
                    ? DateTime.fromMillis(tick.time).toLocaleString(
                          tick.step < 60
                              ? DateTime.TIME_24_WITH_SECONDS
                              : DateTime.TIME_24_SIMPLE
                      )
                    : "",
        }));
        return {lanes, legend, ticks, peak: peakConcurrency(all), jobs: all.length};
    }

    laneLabel(lane) {
        return this.props.labels.roles[lane.role] || _t("PID not in the registry");
    }

    barStyle(bar) {
        const color = this.props.colors[bar.job.channel] || "#999";
        return `left: ${bar.left}%; width: ${bar.width}%; top: ${
            bar.row * ROW_HEIGHT + 2
        }px; background-color: ${color};`;
    }

    tooltipInfo(bar) {
        const job = bar.job;
        const start = Date.parse(job.started);
        const end = job.end ? Date.parse(job.end) : null;
        return JSON.stringify({
            name: job.name || _t("(a job outside Async Lab bursts)"),
            channel: job.channel,
            state: job.state,
            pid: job.pid,
            attempt: job.retry, // queue_job counts the run in progress: 1 on the first run
            started: DateTime.fromMillis(start).toLocaleString(
                DateTime.TIME_24_WITH_SECONDS
            ),
            duration: end ? formatDuration((end - start) / 1000) : _t("running"),
        });
    }

    /** A click on a bar: why that job runs, waits or ended, under the timeline. */
    async selectJob(job) {
        Object.assign(this.selection, {job, why: null, error: null});
        try {
            const why = await this.orm.call("queue.job", "async_lab_why", [[job.id]]);
            if (this.selection.job === job) {
                this.selection.why = why;
            }
        } catch (error) {
            if (this.selection.job === job) {
                this.selection.error =
                    (error.data && error.data.message) ||
                    error.message ||
                    String(error);
            }
        }
    }

    openJob(job) {
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "queue.job",
            res_id: job.id,
            views: [[false, "form"]],
        });
    }
}
