"""The login lock is kept in the database: it holds across two server processes."""
import re
import urllib.parse

from .server import Server

PASSWORD = "a long enough password"


def login(server, username, password):
    """A browser-like login: fetch the form (cookie + CSRF token), post it. Returns the status."""
    conn = server.connection()
    try:
        conn.request("GET", "/login")
        page = conn.getresponse()
        html = page.read().decode()
        cookie = page.getheader("Set-Cookie").split(";")[0]
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
        body = urllib.parse.urlencode({"csrf_token": csrf, "username": username, "password": password})
        conn.request("POST", "/login", body=body, headers={"Cookie": cookie,
                                                           "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_lockout_holds_across_two_server_processes(tmp_path):
    db_path = tmp_path / "atm.db"
    with Server(db_path, workers=1) as first, Server(db_path, workers=1) as second:
        made = first.flask("create-teller", "tina", input_text=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        assert login(first, "tina", PASSWORD) == 303
        for server, attempt in ((first, 1), (second, 2), (first, 3), (second, 4)):
            assert login(server, "tina", f"wrong password {attempt}") == 401
        assert login(first, "tina", "wrong password 5") == 429      # the fifth failure, counted across both
        assert login(second, "tina", PASSWORD) == 429                # locked on the other process too
        assert login(first, "tina", PASSWORD) == 429
    with Server(db_path, workers=1) as restarted:                     # and after a restart
        assert login(restarted, "tina", PASSWORD) == 429
