"""A revocation holds at once in every server process: SQLite's cached tokens, PostgreSQL's servers sharing no
disk."""
import re
import urllib.parse

import pytest

from atm_web.serving import aio
from atm_web.staff import tokens

from .server import Server
from conftest import close_app, make_app


@pytest.mark.sqlite_only
def test_revocation_holds_at_once_in_every_server_process(database):
    db_path = database
    with Server(db_path, workers=1) as first, Server(db_path, workers=1) as second:
        second.token = first.token
        for server in (first, second):  # the token is now cached in both processes
            assert server.request("GET", "/accounts/1/balance")[0] == 200
        operator = make_app(db_path)  # a third process (this one) revokes it
        try:
            db = operator.extensions["atm_db"]
            token_id = next(t.id for t in aio.run(tokens.list_tokens(db)) if t.name == "e2e")
            aio.run(tokens.revoke_token(db, token_id, "test", 0))
        finally:
            close_app(operator)
        for server in (first, second):
            status, body = server.request("POST", "/accounts/1/deposit", {"amount": 1})
            assert status == 401, body
            assert server.request("GET", "/accounts/1/balance")[0] == 401


class Browser:
    """An administrator's browser on one server: a session cookie, and forms posted with their CSRF token."""

    def __init__(self, server, username, password):
        self.server, self.cookie = server, ""
        page = self.get("/login")
        status = self.post_form("/login", page, {"username": username, "password": password})
        assert status == 303, "login failed"

    def _send(self, method, path, body=None, headers=None):
        conn = self.server.connection()
        try:
            conn.request(method, path, body=body, headers={"Cookie": self.cookie, **(headers or {})})
            response = conn.getresponse()
            html = response.read().decode()
            cookie = response.getheader("Set-Cookie")
            if cookie:
                self.cookie = cookie.split(";")[0]
            return response.status, html
        finally:
            conn.close()

    def get(self, path) -> str:
        status, html = self._send("GET", path)
        assert status == 200, (path, status)
        return html

    def post_form(self, path, page, fields) -> int:
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({"csrf_token": csrf, **fields})
        return self._send("POST", path, body, {"Content-Type": "application/x-www-form-urlencoded"})[0]


@pytest.mark.postgresql_only
def test_a_token_revoked_through_one_server_is_refused_by_the_other_at_once(database, tmp_path):
    """Two servers share no disk, only the database: the revocation reaches the other server by it alone."""
    with Server(database, workers=2, log_path=tmp_path / "a.log") as first, \
            Server(database, workers=2, log_path=tmp_path / "b.log") as second:
        second.token = first.token
        made = first.flask("create-teller", "ada", "--admin", input_text="ada's long password\n")
        assert made.returncode == 0, made.stderr
        for _ in range(4):  # each worker of both servers has seen the token work
            for server in (first, second):
                assert server.request("POST", "/accounts/TK1/deposit", {"amount": 1})[0] == 200
        admin = Browser(first, "ada", "ada's long password")
        tokens_page = admin.get("/admin/tokens")
        token_id = re.search(r'action="/admin/tokens/(\d+)/revoke"', tokens_page).group(1)
        assert admin.post_form(f"/admin/tokens/{token_id}/revoke", tokens_page, {}) == 303
        for _ in range(4):
            status, body = second.request("POST", "/accounts/TK1/deposit", {"amount": 1})
            assert status == 401, body
            assert second.request("GET", "/accounts/TK1/balance")[0] == 401
        assert first.request("GET", "/accounts/TK1/balance")[0] == 401
