/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import { Component } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { serializeDateTime } from "@web/core/l10n/dates";
import { useService } from "@web/core/utils/hooks";

const { DateTime } = luxon;

export const COUNT_COLUMNS = ["pending", "enqueued", "started", "done", "failed"];

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
        return last ? DateTime.fromISO(last).toLocaleString(DateTime.TIME_24_WITH_SECONDS) : null;
    }

    jobsDomain(channel, state) {
        const domain = [
            ["channel", "=", channel.name],
            ["state", "=", state],
        ];
        if (state === "done" || state === "failed") {
            const since = DateTime.utc().minus({ minutes: this.props.window });
            domain.push([
                state === "done" ? "date_done" : "date_started",
                ">=",
                serializeDateTime(since),
            ]);
        }
        return domain;
    }

    openJobs(channel, state) {
        return this.action.doAction({
            type: "ir.actions.act_window",
            name: _t("%s jobs of %s", state, channel.name),
            res_model: "queue.job",
            views: [
                [false, "list"],
                [false, "form"],
            ],
            domain: this.jobsDomain(channel, state),
            context: { create: false },
        });
    }
}
