/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, onWillStart, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {loadBundle} from "@web/core/assets";
import {_t} from "@web/core/l10n/translation";
import {registry} from "@web/core/registry";
import {KeepLast} from "@web/core/utils/concurrency";
import {useService} from "@web/core/utils/hooks";
import {Layout} from "@web/search/layout";
import {standardActionServiceProps} from "@web/webclient/actions/action_service";

import {AdvisorPanel} from "../advisor_panel/advisor_panel";
import {ChannelTable} from "../channel_table/channel_table";
import {LabPanel} from "../lab_panel/lab_panel";
import {LaunchPanel} from "../launch_panel/launch_panel";
import {ProcessTree} from "../process_tree/process_tree";
import {StageLatency} from "../stage_latency/stage_latency";
import {Swimlane} from "../swimlane/swimlane";
import {ThroughputChart} from "../throughput_chart/throughput_chart";
import {channelColors} from "../utils/colors";
import {POLL_INTERVAL, useLiveUpdates} from "./live_updates";

export const BUS_CHANNEL = "async_lab.dashboard";
/** Statistics window of the counters, chart and tables, in minutes, by default. */
export const WINDOW_MINUTES = 60;
/**
 * The windows offered: up to an hour every figure is exact; beyond, the
 * server reads its rollups and the percentiles come from histograms.
 */
export const WINDOW_CHOICES = [
    {minutes: 60, label: _t("1 h"), period: _t("last hour")},
    {minutes: 360, label: _t("6 h"), period: _t("last 6 hours")},
    {minutes: 1440, label: _t("24 h"), period: _t("last 24 hours")},
    {minutes: 10080, label: _t("7 d"), period: _t("last 7 days")},
];
/** The user's window, remembered by the browser. */
export const WINDOW_KEY = "async_lab.window";
/** Timeline lengths offered, in minutes, up to the server's maximum. */
export const LANE_MINUTES_CHOICES = [1, 2, 5, 10, 30, 60];
/** The user's timeline choices, remembered by the browser. */
export const LANE_MINUTES_KEY = "async_lab.lane_minutes";
export const LANE_FIT_KEY = "async_lab.lane_fit";

/** The remembered statistics window, or the default one. */
function storedWindow() {
    const minutes = parseInt(browser.localStorage.getItem(WINDOW_KEY), 10);
    return WINDOW_CHOICES.some((choice) => choice.minutes === minutes)
        ? minutes
        : WINDOW_MINUTES;
}

/** The remembered timeline length, or null for the server's default. */
function storedLaneMinutes() {
    const minutes = parseInt(browser.localStorage.getItem(LANE_MINUTES_KEY), 10);
    return LANE_MINUTES_CHOICES.includes(minutes) ? minutes : null;
}

/**
 * Async Lab → Dashboard: processes, queue_job channels and experiments,
 * live. One call of ``async_lab.dashboard.get_data`` (the orm service) feeds
 * every panel; the bus says when to call it again, polling covers a missing
 * websocket. The route ``/async_lab/dashboard/data`` returns the same dict to
 * clients other than the web client.
 */
export class AsyncLabDashboard extends Component {
    static template = "async_lab.Dashboard";
    static components = {
        AdvisorPanel,
        ChannelTable,
        LabPanel,
        LaunchPanel,
        Layout,
        ProcessTree,
        StageLatency,
        Swimlane,
        ThroughputChart,
    };
    static props = {...standardActionServiceProps};

    setup() {
        this.orm = useService("orm");
        this.keepLast = new KeepLast();
        this.pollSeconds = POLL_INTERVAL / 1000;
        this.state = useState({
            data: null,
            error: null,
            laneMinutes: storedLaneMinutes(),
            window: storedWindow(),
            fitLanes: browser.localStorage.getItem(LANE_FIT_KEY) !== "0",
        });
        this.live = useLiveUpdates(() => this.load(), BUS_CHANNEL);
        onWillStart(async () => {
            await Promise.all([loadBundle("web.chartjs_lib"), this.load()]);
        });
    }

    get display() {
        return {controlPanel: {}};
    }

    /** Fetch the data; a newer call wins (KeepLast), errors show inline. */
    async load() {
        try {
            const data = await this.keepLast.add(
                this.orm.silent.call(
                    "async_lab.dashboard",
                    "get_data",
                    [],
                    this.state.laneMinutes
                        ? {
                              window: this.state.window,
                              lane_minutes: this.state.laneMinutes,
                          }
                        : {window: this.state.window}
                )
            );
            this.state.data = data;
            this.state.laneMinutes = data.swimlanes.minutes;
            this.state.error = null;
        } catch (error) {
            this.state.error = error?.data?.message || error?.message || String(error);
        }
    }

    /** Timeline lengths to choose: with the server's default, none above its maximum. */
    get laneChoices() {
        const {default_lane_minutes: byDefault, max_lane_minutes: max} =
            this.state.data.constants;
        return [...new Set([...LANE_MINUTES_CHOICES, byDefault])]
            .filter((minutes) => minutes <= max)
            .sort((a, b) => a - b);
    }

    get colors() {
        const stats = this.state.data.stats;
        return channelColors(stats.channels.map((channel) => channel.name));
    }

    /** The runner as the stats see it, plus a runner thread of a threaded server. */
    get runner() {
        const {stats, runner_threads: threads} = this.state.data;
        return {...stats.runner, thread: threads[0] || null};
    }

    get windowChoices() {
        return WINDOW_CHOICES;
    }

    /** The choice of the window the figures shown are of. */
    get windowChoice() {
        const minutes = this.state.data.stats.window_minutes;
        return (
            WINDOW_CHOICES.find((choice) => choice.minutes === minutes) || {
                minutes,
                label: _t("%(minutes)s min", {minutes}),
                period: _t("last %(minutes)s minutes", {minutes}),
            }
        );
    }

    get counters() {
        const totals = this.state.data.stats.totals;
        const windowPeriod = this.windowChoice.period;
        const processed = _t("Processed");
        const failed = _t("Failed");
        return [
            {
                key: "done_minute",
                label: processed,
                period: _t("last minute"),
                value: totals.done_last_minute,
            },
            {
                key: "done_hour",
                label: processed,
                period: windowPeriod,
                value: totals.done_window,
            },
            {
                key: "failed_minute",
                label: failed,
                period: _t("last minute"),
                value: totals.failed_last_minute,
                danger: totals.failed_last_minute > 0,
            },
            {
                key: "failed_hour",
                label: failed,
                period: windowPeriod,
                value: totals.failed_window,
                danger: totals.failed_window > 0,
            },
            {
                key: "waiting",
                label: _t("Waiting"),
                period: _t("pending + enqueued"),
                value: totals.pending + totals.enqueued,
            },
            {
                key: "running",
                label: _t("Running"),
                period: _t("started now"),
                value: totals.started,
            },
        ];
    }

    get liveLabel() {
        if (this.state.error) {
            return _t("Cannot refresh: retrying");
        }
        return this.live.busLive()
            ? _t("Live (bus)")
            : _t("Live (polling every %s s)", this.pollSeconds);
    }

    onWindowChange(minutes) {
        this.state.window = minutes;
        browser.localStorage.setItem(WINDOW_KEY, String(minutes));
        this.load();
    }

    onLaneMinutesChange(ev) {
        this.state.laneMinutes = parseInt(ev.target.value, 10);
        browser.localStorage.setItem(LANE_MINUTES_KEY, String(this.state.laneMinutes));
        this.load();
    }

    onFitChange(ev) {
        this.state.fitLanes = ev.target.checked;
        browser.localStorage.setItem(LANE_FIT_KEY, ev.target.checked ? "1" : "0");
    }

    onLaunched() {
        this.load();
    }
}

registry.category("actions").add("async_lab.dashboard", AsyncLabDashboard);
