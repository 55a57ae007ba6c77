/** @odoo-module **/
// Copyright 2026 Async Lab contributors
// License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import {registry} from "@web/core/registry";

/**
 * Run by tests/test_i18n.py (TestFrenchDashboardTour) as a user whose
 * language is French: the action's name comes from the server, the panel
 * titles from the OWL templates and the live label from _t(), the last two
 * translated by the web client from i18n/fr.po.
 *
 * The strings checked are async_lab's own: the web client merges the terms
 * of every module, and a common word ("Channels") is translated by others.
 */
registry.category("web_tour.tours").add("async_lab_dashboard_fr_tour", {
    test: true,
    steps: () => [
        {
            content: "The breadcrumb shows the action's French name (server side)",
            trigger: ".o_breadcrumb:contains(Tableau de bord)",
            isCheck: true,
        },
        {
            content: "The OWL templates are in French",
            trigger: ".o_async_lab_stage_latency h5:contains(Latence par étape)",
            isCheck: true,
        },
        {
            content: "Every panel title, not only the first one",
            trigger: ".o_async_lab_launch h5:contains(Créer de la charge)",
            isCheck: true,
        },
        {
            content:
                "And the strings of the JS code (_t), with their placeholders filled",
            trigger:
                ".o_async_lab_live:contains(En direct):contains(interrogation toutes les)",
            isCheck: true,
        },
        {
            content: "No English panel title is left",
            trigger:
                ".o_async_lab_dashboard:not(:has(h5:contains(Stage latency))):not(:has(h5:contains(Create load)))",
            isCheck: true,
        },
    ],
});
