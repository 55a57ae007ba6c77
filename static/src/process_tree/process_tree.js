/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {Component} from "@odoo/owl";
import {ConfirmationDialog} from "@web/core/confirmation_dialog/confirmation_dialog";
import {_t} from "@web/core/l10n/translation";
import {useService} from "@web/core/utils/hooks";

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
        /** Called once a server control is recorded: the dashboard refreshes. */
        onControlled: {type: Function, optional: true},
    };

    setup() {
        this.orm = useService("orm");
        this.dialog = useService("dialog");
        this.notification = useService("notification");
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
        return _t("Replaces PID %(pid)s, which ended: %(reason)s", {
            pid: respawn.old_pid,
            reason: this.props.labels.exit_reasons[respawn.reason] || respawn.reason,
        });
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

    /** Recycle and kill: HTTP and cron workers that are alive, for managers. */
    canControl(node) {
        return (
            this.props.me.is_manager &&
            node.state === "alive" &&
            ["http", "cron"].includes(node.role)
        );
    }

    canControlNode(server) {
        return (
            this.props.me.is_manager &&
            server.mode === "prefork" &&
            server.master.state === "alive" &&
            !server.stopped_reporting
        );
    }

    /**
     * Ask for a server control (async_lab.control) after a confirmation; the
     * node carries it out within seconds, the next refresh shows the change.
     */
    confirmControl(action, server, node = null) {
        const pid = node && node.pid;
        const messages = {
            recycle: _t(
                "Recycle worker %(pid)s? It finishes its current request, then the master forks a new one.",
                {pid}
            ),
            kill: _t(
                "Kill worker %(pid)s with SIGKILL? Its current request is lost; the master forks a new one.",
                {pid}
            ),
            add_http_worker: _t(
                "Add one HTTP worker to node %(node)s (SIGTTIN to its master)?",
                {
                    node: server.node,
                }
            ),
            remove_http_worker: _t(
                "Remove one HTTP worker from node %(node)s? Its master lowers its count (SIGTTOU), and one worker finishes its request and stops.",
                {node: server.node}
            ),
        };
        this.dialog.add(ConfirmationDialog, {
            title: _t("Server control"),
            body: messages[action],
            confirmLabel: _t("Confirm"),
            confirm: async () => {
                const values = {action, node: server.node};
                if (node) {
                    values.pid = node.pid;
                }
                try {
                    await this.orm.create("async_lab.control", [values]);
                } catch (error) {
                    this.notification.add(
                        error?.data?.message || error?.message || String(error),
                        {
                            type: "danger",
                        }
                    );
                    return;
                }
                this.notification.add(
                    _t("Requested: the node carries it out within a few seconds."),
                    {type: "info"}
                );
                if (this.props.onControlled) {
                    this.props.onControlled();
                }
            },
            // A Cancel button, which only closes the dialog.
            cancel: () => undefined,
        });
    }

    serverSummary(server) {
        if (server.mode === "threaded") {
            const threads = (server.master.threads || []).length;
            return _t("threaded (workers = 0): one process, %(threads)s threads", {
                threads,
            });
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
            return _t("prefork: %(processes)s", {processes: parts.join(", ")});
        }
        return server.master.state === "gone"
            ? _t("prefork: stopped")
            : _t("prefork: no child seen yet");
    }
}
