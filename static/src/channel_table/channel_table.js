/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";
import {serializeDateTime} from "@web/core/l10n/dates";
import {useService} from "@web/core/utils/hooks";

const {DateTime} = luxon;

export const COUNT_COLUMNS = ["pending", "enqueued", "started", "done", "failed"];
const STATE_LABELS = {
    pending: _t("Pending"),
    enqueued: _t("Enqueued"),
    started: _t("Started"),
    done: _t("Done"),
    failed: _t("Failed"),
};

/**
 * queue_job channels: capacity (from the runner's configuration, its only
 * source) and job counts by state. Each count opens the matching jobs.
 */
export class ChannelTable extends Component {
    static template = "async_lab.ChannelTable";
    static props = {
        channels: Array,
        colors: Object,
        runner: Object,
        window: Number,
    };

    setup() {
        this.action = useService("action");
        this.columns = COUNT_COLUMNS;
    }

    lastDispatch() {
        const last = this.props.runner.last_dispatched;
        return last
            ? DateTime.fromISO(last).toLocaleString(DateTime.TIME_24_WITH_SECONDS)
            : null;
    }

    /**
     * The count's jobs: the channel in the domain (exact: its name is also
     * the start of its sub-channels'), the state and the window as filters
     * of the search view, so that the list shows them as facets.
     */
    jobsAction(channel, state) {
        const context = {create: false, [`search_default_${state}`]: 1};
        const domain = [["channel", "=", channel.name]];
        if (state === "done" || state === "failed") {
            const filter =
                state === "done"
                    ? "async_lab_done_last_hour"
                    : "async_lab_started_last_hour";
            if (this.props.window === 60) {
                context[`search_default_${filter}`] = 1;
            } else {
                const since = DateTime.utc().minus({minutes: this.props.window});
                const field = state === "done" ? "date_done" : "date_started";
                domain.push([field, ">=", serializeDateTime(since)]);
            }
        }
        return {
            type: "ir.actions.act_window",
            name: _t("%(state)s jobs of %(channel)s", {
                state: STATE_LABELS[state],
                channel: channel.name,
            }),
            res_model: "queue.job",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain,
            context,
        };
    }

    openJobs(channel, state) {
        return this.action.doAction(this.jobsAction(channel, state));
    }
}
