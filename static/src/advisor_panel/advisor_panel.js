/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component, onWillStart, onWillUnmount, useState} from "@odoo/owl";
import {browser} from "@web/core/browser/browser";
import {useService} from "@web/core/utils/hooks";

/** The advisor reads a quarter of an hour of load: checking it once a minute is enough. */
export const ADVICE_REFRESH_MS = 60000;
const SEVERITY_CLASSES = {critical: "danger", warning: "warning", info: "info"};

function evidenceText(value) {
    if (Array.isArray(value)) {
        return value.every((v) => typeof v !== "object")
            ? value.join(", ")
            : String(value.length);
    }
    if (value && typeof value === "object") {
        return JSON.stringify(value);
    }
    return value === null || value === undefined ? "–" : String(value);
}

/**
 * A finding's evidence as short "key: value" strings, nested values flattened
 * (lists of objects give their count).
 */
export function evidenceItems(evidence) {
    return Object.entries(evidence || {}).map(
        ([key, value]) => `${key.replaceAll("_", " ")}: ${evidenceText(value)}`
    );
}

/**
 * The capacity advisor: each node's configuration and the measured load,
 * judged by async_lab.advisor; findings worst first, each with its evidence
 * and the configuration line that fixes it.
 */
export class AdvisorPanel extends Component {
    static template = "async_lab.AdvisorPanel";
    static props = {};

    setup() {
        this.orm = useService("orm");
        this.state = useState({advice: null, error: null, loading: false});
        this.severityClasses = SEVERITY_CLASSES;
        this.evidenceItems = evidenceItems;
        onWillStart(() => this.load());
        onWillUnmount(() => browser.clearTimeout(this.timer));
    }

    async load() {
        browser.clearTimeout(this.timer);
        this.state.loading = true;
        try {
            this.state.advice = await this.orm.call(
                "async_lab.advisor",
                "get_advice",
                []
            );
            this.state.error = null;
        } catch (error) {
            this.state.error =
                (error.data && error.data.message) || error.message || String(error);
        } finally {
            this.state.loading = false;
            this.timer = browser.setTimeout(() => this.load(), ADVICE_REFRESH_MS);
        }
    }

    get findings() {
        return (this.state.advice && this.state.advice.findings) || [];
    }
}
