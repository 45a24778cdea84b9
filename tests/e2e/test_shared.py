"""Two app servers (the Procfile's command on two ports, 2 workers each) on one PostgreSQL database: what they
share holds as if they were one server."""
import time

import pytest

from .server import burst

pytestmark = pytest.mark.postgresql_only


def test_identical_requests_at_two_servers_at_once_make_one_journal_row(two_servers, raw):
    answers = burst(20, lambda n: two_servers[n % 2].request(
        "POST", "/accounts/TWIN/deposit", {"amount": 12.5}, headers={"Idempotency-Key": "pay-run-7"}))
    assert {status for status, _ in answers} == {200}
    bodies = {tuple(sorted(body.items())) for _, body in answers}
    assert len(bodies) == 1  # the same answer everywhere: the original's
    assert raw.rows("SELECT account_number, amount_cents FROM journal ORDER BY id") == [
        ("TWIN", 1250), ("@clearing", 1250)]  # one transaction: the deposit and the bank's side of it


def test_a_hot_account_fed_by_64_clients_on_two_servers_loses_none(two_servers, raw):
    deposits = 25

    def client(n):
        conn = two_servers[n % 2].connection(timeout=30)
        try:
            return [two_servers[n % 2].request("POST", "/accounts/HOT/deposit", {"amount": 0.01}, conn=conn)[0]
                    for _ in range(deposits)]
        finally:
            conn.close()

    started = time.monotonic()
    statuses = [status for result in burst(64, client) for status in result]
    assert statuses == [200] * 64 * deposits
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = 'HOT'") == 64 * deposits
    assert raw.journal_count() == 64 * deposits
    verified = two_servers[1].flask("verify")  # the account's chain, in order, with every row
    assert verified.returncode == 0, verified.stderr
    print(f"hot account: {64 * deposits} deposits from 64 clients on two servers in {time.monotonic() - started:.1f}s")
