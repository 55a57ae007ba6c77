/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, onWillUnmount, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";

/** Jobs of a burst launched from the dashboard unless the user says otherwise. */
export const DEFAULT_COUNT = 10;
/** A launch message ("Burst 3 launched…") goes after this long: it tells what just happened, not what is. */
export const MESSAGE_SECONDS = 15;

const {DateTime} = luxon;

/** "12" -> 12; anything else is sent as typed, for the server to explain. */
function asInteger(value) {
    const text = String(value).trim();
    return /^-?\d+$/.test(text) ? parseInt(text, 10) : text;
}

function errorMessage(error) {
    return error?.data?.message || error?.message || String(error);
}

/**
 * Actions that create load (Async Lab managers only): launch a burst of
 * queue jobs, run an experiment from a preset.
 */
export class LaunchPanel extends Component {
    static template = "async_lab.LaunchPanel";
    static props = {
        form: Object,
        isManager: Boolean,
        lab: {type: [Object, {value: null}], optional: true},
        onLaunched: Function,
    };

    setup() {
        this.orm = useService("orm");
        this.action = useService("action");
        const first = this.props.form.workloads[0];
        this.state = useState({
            workload: first?.name,
            params: this.defaultParams(first),
            count: DEFAULT_COUNT,
            channel: first?.channel,
            preset: this.props.lab?.presets?.[0]?.key,
            busy: false,
            result: null,
            error: null,
        });
        this.messageTimer = null;
        onWillUnmount(() => browser.clearTimeout(this.messageTimer));
    }

    get workload() {
        return this.props.form.workloads.find((w) => w.name === this.state.workload);
    }

    defaultParams(workload) {
        return Object.fromEntries(
            (workload?.params || []).map((p) => [p.name, p.default])
        );
    }

    onWorkloadChange(ev) {
        this.state.workload = ev.target.value;
        this.state.params = this.defaultParams(this.workload);
        this.state.channel = this.workload.channel;
    }

    async launchBurst() {
        const params = Object.fromEntries(
            Object.entries(this.state.params).map(([name, value]) => [
                name,
                asInteger(value),
            ])
        );
        await this.run(async () => {
            const result = await this.orm.call("async_lab.dashboard", "launch_burst", [
                this.state.workload,
                asInteger(this.state.count),
                this.state.channel,
                params,
            ]);
            return {
                kind: "burst",
                id: result.burst_id,
                text: _t(
                    "Burst %s launched at %s: %s jobs on %s",
                    result.burst_id,
                    DateTime.now().toLocaleString(DateTime.TIME_24_WITH_SECONDS),
                    result.job_uuids.length,
                    result.channel
                ),
            };
        });
    }

    async runExperiment() {
        await this.run(async () => {
            const result = await this.orm.call("async_lab.experiment", "run_preset", [
                this.state.preset,
            ]);
            return {
                kind: "experiment",
                id: result.experiment_id,
                text: _t(
                    "Experiment %s queued at %s: its results appear in the lab panel when it is done.",
                    result.experiment_id,
                    DateTime.now().toLocaleString(DateTime.TIME_24_WITH_SECONDS)
                ),
            };
        });
    }

    async run(call) {
        this.state.busy = true;
        this.state.error = null;
        this.state.result = null;
        browser.clearTimeout(this.messageTimer);
        try {
            this.state.result = await call();
            this.messageTimer = browser.setTimeout(() => {
                this.state.result = null;
            }, MESSAGE_SECONDS * 1000);
            this.props.onLaunched();
        } catch (error) {
            this.state.error = errorMessage(error);
        } finally {
            this.state.busy = false;
        }
    }

    openResult() {
        const model =
            this.state.result.kind === "burst"
                ? "async_lab.burst"
                : "async_lab.experiment";
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: model,
            res_id: this.state.result.id,
            views: [[false, "form"]],
        });
    }
}
