"""MAX_DEBT changes take effect on an existing database when the real server restarts."""
from .server import Server


def test_max_debt_change_applies_after_server_restart(tmp_path):
    db_path = tmp_path / "atm.db"
    with Server(db_path, workers=1, MAX_DEBT="100") as server:
        assert server.request("POST", "/accounts/R1/withdraw", {"amount": 100})[0] == 200
        assert server.request("POST", "/accounts/R1/withdraw", {"amount": 0.01})[0] == 400
    with Server(db_path, workers=1, MAX_DEBT="250.50") as server:
        status, body = server.request("POST", "/accounts/R1/withdraw", {"amount": 150.50})
        assert (status, body["balance"]) == (200, -250.5)
        assert server.request("POST", "/accounts/R1/withdraw", {"amount": 0.01}) == \
            (400, {"detail": "Insufficient funds for withdrawal"})
