/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component} from "@odoo/owl";
import {_t} from "@web/core/l10n/translation";

import {formatAge, formatMiB, formatPercent} from "../utils/format";

const ROLE_ICONS = {
    master: "fa-sitemap",
    threaded: "fa-server",
    http: "fa-globe",
    cron: "fa-clock-o",
    jobrunner: "fa-tasks",
    gevent: "fa-bolt",
};
const THREAD_ICONS = {
    http: "fa-globe",
    cron: "fa-clock-o",
    jobrunner: "fa-tasks",
    websocket: "fa-bolt",
};
const SHORT_ROLES = {
    http: "HTTP",
    cron: "cron",
    jobrunner: "job runner",
    gevent: "gevent",
};

/**
 * The process map: per host, each master and its children (HTTP workers,
 * cron workers, job runner, gevent), or one threaded process and its threads.
 */
export class ProcessTree extends Component {
    static template = "async_lab.ProcessTree";
    static props = {
        hosts: Array,
        labels: Object,
        me: Object,
        /** Seconds a vanished process stays on the map (the server's GONE_VISIBLE). */
        fadeSeconds: Number,
    };

    setup() {
        this.formatAge = formatAge;
        this.formatMiB = formatMiB;
        this.formatPercent = formatPercent;
    }

    get processCount() {
        let count = 0;
        for (const host of this.props.hosts) {
            for (const server of host.servers) {
                count += server.alive;
            }
        }
        return count;
    }

    roleLabel(role) {
        return this.props.labels.roles[role] || role || _t("Unknown role");
    }

    roleIcon(role) {
        return ROLE_ICONS[role] || "fa-question";
    }

    threadIcon(thread) {
        return THREAD_ICONS[thread.role] || "fa-circle-thin";
    }

    /** "Memory limit (limit_memory_soft)" -> "Memory limit" for a badge. */
    shortReason(reason) {
        const label = this.props.labels.exit_reasons[reason] || reason || "";
        return label.split(" (")[0];
    }

    respawnTooltip(node) {
        const respawn = node.respawn;
        return _t(
            "Replaces PID %s, which ended: %s",
            respawn.old_pid,
            this.props.labels.exit_reasons[respawn.reason] || respawn.reason
        );
    }

    rowClass(node) {
        return {
            o_async_lab_process_gone: node.state === "gone",
            o_async_lab_process_stale: node.state === "stale",
            o_async_lab_process_new: node.is_new,
            o_async_lab_process_me: node.pid === this.props.me.pid,
        };
    }

    rowStyle(node) {
        if (node.state !== "gone") {
            return "";
        }
        // A vanished process fades out while the server still sends it.
        const opacity = Math.max(
            0.2,
            0.7 * (1 - (node.gone_for || 0) / this.props.fadeSeconds)
        );
        return `opacity: ${opacity.toFixed(2)}`;
    }

    serverSummary(server) {
        if (server.mode === "threaded") {
            const threads = (server.master.threads || []).length;
            return _t("threaded (workers = 0): one process, %s threads", threads);
        }
        const counts = {};
        for (const child of server.children) {
            if (child.state !== "gone") {
                counts[child.role] = (counts[child.role] || 0) + 1;
            }
        }
        const parts = Object.entries(counts).map(
            ([role, count]) => `${count} ${SHORT_ROLES[role] || role}`
        );
        if (parts.length) {
            return _t("prefork: %s", parts.join(", "));
        }
        return server.master.state === "gone"
            ? _t("prefork: stopped")
            : _t("prefork: no child seen yet");
    }
}
