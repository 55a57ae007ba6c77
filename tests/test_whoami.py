# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
import os
import socket

from odoo.tests import HttpCase, new_test_user, tagged


@tagged("post_install", "-at_install")
class TestWhoami(HttpCase):
    def test_authenticated_user_sees_the_serving_process(self):
        self.authenticate("admin", "admin")
        resp = self.url_open("/async_lab/whoami")
        self.assertEqual(resp.status_code, 200)
        self.assertEqual(resp.headers["Content-Type"].split(";")[0], "application/json")
        data = resp.json()
        self.assertEqual(set(data), {"pid", "master_pid", "host", "role", "thread", "db", "uid", "mode"})
        # The test server is threaded (workers=0): one process serves it all.
        self.assertEqual(data["pid"], os.getpid())
        self.assertEqual(data["master_pid"], os.getpid())
        self.assertEqual(data["mode"], "threaded")
        self.assertEqual(data["role"], "threaded")
        self.assertEqual(data["host"], socket.gethostname())
        self.assertEqual(data["db"], self.env.cr.dbname)
        self.assertEqual(data["uid"], self.env.ref("base.user_admin").id)
        self.assertTrue(data["thread"])

    def test_anonymous_gets_401_json(self):
        resp = self.url_open("/async_lab/whoami", allow_redirects=False)
        self.assertEqual(resp.status_code, 401)
        self.assertEqual(resp.json()["error"]["code"], "unauthorized")
        self.assertNotIn("master_pid", resp.text)

    def test_portal_and_internal_users_without_the_group_get_403(self):
        new_test_user(self.env, "whoami_portal", groups="base.group_portal")
        new_test_user(self.env, "whoami_internal", groups="base.group_user")
        for login in ("whoami_portal", "whoami_internal"):
            with self.subTest(login=login):
                self.authenticate(login, login)
                resp = self.url_open("/async_lab/whoami", allow_redirects=False)
                self.assertEqual(resp.status_code, 403)
                self.assertEqual(resp.json()["error"]["code"], "forbidden")
                self.assertNotIn("master_pid", resp.text)
