"""Verified tokens are cached in each server process; a revocation still holds at once in all of them."""
from atm_web import aio, staff
from conftest import close_app, make_app

from .server import Server


def test_revocation_holds_at_once_in_every_server_process(tmp_path):
    db_path = tmp_path / "atm.db"
    with Server(db_path, workers=1) as first, Server(db_path, workers=1) as second:
        second.token = first.token
        for server in (first, second):  # the token is now cached in both processes
            assert server.request("GET", "/accounts/1/balance")[0] == 200
        operator = make_app(db_path)  # a third process (this one) revokes it
        try:
            db = operator.extensions["atm_db"]
            token_id = next(t.id for t in aio.run(staff.list_tokens(db)) if t.name == "e2e")
            aio.run(staff.revoke_token(db, token_id, "test", 0))
        finally:
            close_app(operator)
        for server in (first, second):
            status, body = server.request("POST", "/accounts/1/deposit", {"amount": 1})
            assert status == 401, body
            assert server.request("GET", "/accounts/1/balance")[0] == 401
