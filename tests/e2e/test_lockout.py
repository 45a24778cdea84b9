"""The login lock is kept in the database: it holds across two server processes."""
import re
import urllib.parse

from .server import Server, burst

PASSWORD = "a long enough password"


def login_form(server):
    """A browser's first step: fetch the login form on a kept-alive connection (cookie + CSRF token)."""
    conn = server.connection()
    conn.request("GET", "/login")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    return conn, cookie, csrf


def post_login(form, username, password) -> int:
    """The second step: post the form on its connection. Returns the status."""
    conn, cookie, csrf = form
    try:
        body = urllib.parse.urlencode({"csrf_token": csrf, "username": username, "password": password})
        conn.request("POST", "/login", body=body, headers={"Cookie": cookie,
                                                           "Content-Type": "application/x-www-form-urlencoded"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def login(server, username, password):
    """A browser-like login: fetch the form, post it. Returns the status."""
    return post_login(login_form(server), username, password)


def test_lockout_holds_across_two_server_processes(database, tmp_path):
    """Two servers on one database (SQLite: two processes on the file; PostgreSQL: servers sharing no disk)."""
    with Server(database, workers=1, log_path=tmp_path / "a.log") as first, \
            Server(database, workers=1, log_path=tmp_path / "b.log") as second:
        made = first.flask("create-teller", "tina", input_text=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        assert login(first, "tina", PASSWORD) == 303
        for server, attempt in ((first, 1), (second, 2), (first, 3), (second, 4)):
            assert login(server, "tina", f"wrong password {attempt}") == 401
        assert login(first, "tina", "wrong password 5") == 429      # the fifth failure, counted across both
        assert login(second, "tina", PASSWORD) == 429                # locked on the other process too
        assert login(first, "tina", PASSWORD) == 429
    with Server(database, workers=1, log_path=tmp_path / "c.log") as restarted:  # and after a restart
        assert login(restarted, "tina", PASSWORD) == 429


def test_a_burst_of_forty_logins_reaches_the_password_check_at_most_five_times(database, tmp_path):
    """The probe's race: 40 logins for one username from one address at once. Every attempt is reserved before
    its password is hashed, so at most 5 are checked, and the right password sent after them is refused.

    (The right password is not sent inside the burst: threads released together reach the server in no fixed
    order, and a right password that is among the first five reserved is rightly checked and let in.)"""
    with Server(database, workers=2, log_path=tmp_path / "server.log") as server:
        made = server.flask("create-teller", "tina", input_text=PASSWORD + "\n")
        assert made.returncode == 0, made.stderr
        forms = [login_form(server) for _ in range(40)]
        statuses = burst(40, lambda n: post_login(forms[n], "tina", f"wrong password {n}"), timeout=60)
        assert set(statuses) <= {401, 429}, str(statuses)
        assert login(server, "tina", PASSWORD) == 429          # the right password, after the burst: refused
    log = server.log_path.read_text(errors="replace")
    checks = len(re.findall(r"login failed: username='tina'", log)) + len(re.findall(r"login: tina from", log))
    assert 1 <= checks <= 5, f"{checks} password checks"
    assert statuses.count(401) <= checks, str(statuses)        # a check's plain failure; all others 429
