/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {getColor} from "@web/core/colors/colors";

/**
 * Odoo's chart palette alternates strong and pale colours: channels take the
 * strong ones, red last (it reads as "failed").
 */
const PALETTE_INDEXES = [0, 1, 4, 8, 12, 16, 18, 10, 14, 6];

/**
 * One colour per channel, the same in the chart and the swimlanes, and stable
 * from one refresh to the next (channels are sorted by name first).
 *
 * @param {string[]} names
 * @returns {Object<string, string>}
 */
export function channelColors(names) {
    const colors = {};
    [...new Set(names)].sort().forEach((name, index) => {
        const round = Math.floor(index / PALETTE_INDEXES.length);
        colors[name] = getColor(
            PALETTE_INDEXES[index % PALETTE_INDEXES.length] + round
        );
    });
    return colors;
}
