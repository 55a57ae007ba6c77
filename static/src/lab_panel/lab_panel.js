/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component} from "@odoo/owl";
import {useService} from "@web/core/utils/hooks";

import {formatDuration, formatPercent} from "../utils/format";

/** Efficiency (speedup ÷ ideal) from which a bar counts as good, then as poor. */
const GOOD_EFFICIENCY = 0.75;
const POOR_EFFICIENCY = 0.4;

/**
 * The latest experiment of the concurrency lab: one bar per strategy for
 * the measured speedup over sequential, a tick at the ideal speedup and a
 * dashed one at the expected speedup (the ideal once measured costs count).
 */
export class LabPanel extends Component {
    static template = "async_lab.LabPanel";
    static props = {
        lab: {type: [Object, {value: null}], optional: true},
    };

    setup() {
        this.action = useService("action");
        this.formatDuration = formatDuration;
    }

    /** Milliseconds as the probe's figures are stored; "–" when none was measured. */
    formatMs(ms) {
        return ms || ms === 0 ? formatDuration(ms / 1000) : "–";
    }

    /** The share of HTTP worker time the burst's jobs held, as a percentage. */
    heldPercent(impact) {
        return formatPercent(
            impact.workers_held === null ? null : impact.workers_held * 100
        );
    }

    get latest() {
        return this.props.lab && this.props.lab.latest;
    }

    /** Bars share one scale: the largest measured or ideal speedup. */
    get rows() {
        const results = this.latest.results;
        const scale =
            Math.max(1, ...results.map((r) => Math.max(r.speedup || 0, r.ideal || 0))) *
            1.05;
        return results.map((result) => ({
            ...result,
            width: ((result.speedup || 0) / scale) * 100,
            idealLeft: ((result.ideal || 0) / scale) * 100,
            // Shown only where measured costs lower the ideal.
            expectedLeft:
                result.expected && result.expected < result.ideal
                    ? (result.expected / scale) * 100
                    : null,
            tone:
                result.efficiency >= GOOD_EFFICIENCY
                    ? "success"
                    : result.efficiency >= POOR_EFFICIENCY
                    ? "warning"
                    : "danger",
        }));
    }

    openExperiment() {
        return this.action.doAction({
            type: "ir.actions.act_window",
            res_model: "async_lab.experiment",
            res_id: this.latest.id,
            views: [[false, "form"]],
        });
    }
}
