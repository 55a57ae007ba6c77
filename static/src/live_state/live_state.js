/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, onMounted, onPatched, onWillUnmount} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {registry} from "@web/core/registry";
import {standardFieldProps} from "@web/views/fields/standard_field_props";

/** How often a form whose record is at work reloads it, in milliseconds. */
export const LIVE_STATE_INTERVAL = 2000;
/** The states in which the record changes on the server without the user. */
export const WORKING_STATES = ["queued", "running"];

/**
 * A state field that keeps its form up to date: while the record is queued
 * or running, the form reloads it every few seconds (unless the user is
 * editing it), so that "Queued" turns into "Running", then "Done" with its
 * results, without a reload of the page.
 */
export class LiveState extends Component {
    static template = "async_lab.LiveState";
    static props = {...standardFieldProps};

    setup() {
        this.timer = null;
        onMounted(() => this.schedule());
        onPatched(() => this.schedule());
        onWillUnmount(() => browser.clearTimeout(this.timer));
    }

    get working() {
        return WORKING_STATES.includes(this.props.record.data[this.props.name]);
    }

    schedule() {
        browser.clearTimeout(this.timer);
        if (this.working) {
            this.timer = browser.setTimeout(() => this.refresh(), LIVE_STATE_INTERVAL);
        }
    }

    async refresh() {
        const record = this.props.record;
        if (!(await record.isDirty())) {
            await record.load();
        }
        this.schedule();
    }
}

registry.category("fields").add("async_lab_live_state", {
    component: LiveState,
    supportedTypes: ["selection"],
});
