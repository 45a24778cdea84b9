"""API writes whose token a server trusts from its cache, on condition (tokens.token_for, auth.token_required).

On PostgreSQL such a request does not read the revocation generation first: each of its writes is made only
if no token has been revoked since the token was verified, checked in the write's own transaction (batched
postings: post_authorised_entries, migration 0004; any other write: the engine's _Authorised op). These tests
revoke through one app (a server) a token cached by another on the same database, then use it there. They run
on both engines: on SQLite every check reads the revocation file instead, and the answers must be the same.
"""
import asyncio

import pytest

from atm_web.ledger import accounts
from atm_web.serving import aio
from atm_web.staff import tokens
from atm_web.storage.common import Authorisation, StaleAuthorisation, authorisation

from conftest import bearer, close_app, make_app


@pytest.fixture
def servers(database, clock):
    first, second = make_app(database, CLOCK=clock), make_app(database, CLOCK=clock)
    yield first, second
    close_app(first)
    close_app(second)


def new_token(app, clock, name):
    return aio.run(tokens.create_token(app.extensions["atm_db"], name, False, "test", clock()))


def revoke(app, clock, token):
    aio.run(tokens.revoke_token(app.extensions["atm_db"], token.id, "test", clock()))


# Each request as a revoked token would send it; every one must be refused 401 with nothing written.
REQUESTS = {
    "deposit": ("/accounts/C1/deposit", {"amount": 5}, {}),
    "withdrawal": ("/accounts/C1/withdraw", {"amount": 1}, {}),
    "transfer": ("/transfers", {"from_account": "C1", "to_account": "C2", "amount": 1}, {}),
    "replay of a deposit made before the revocation": ("/accounts/C1/deposit", {"amount": 2},
                                                       {"Idempotency-Key": "before"}),
    "deposit refused for its amount": ("/accounts/C1/deposit", {"amount": -3}, {}),
    "deposit refused for its account number": ("/accounts/not-a-number!/deposit", {"amount": 1}, {}),
}


@pytest.mark.parametrize("kind", REQUESTS)
def test_a_revoked_token_cached_by_another_server_writes_nothing(servers, clock, raw, kind):
    first, second = servers
    token, secret = new_token(first, clock, "leaver")
    api = second.test_client()
    made = api.post("/accounts/C1/deposit", json={"amount": 2}, headers={**bearer(secret), "Idempotency-Key": "before"})
    assert made.status_code == 200  # and the token is now in the second server's cache
    assert api.post("/accounts/C1/deposit", json={"amount": 1}, headers=bearer(secret)).status_code == 200
    journal, keys = raw.journal_count(), raw.rows("SELECT * FROM idempotency_keys ORDER BY key")
    revoke(first, clock, token)
    path, body, headers = REQUESTS[kind]
    refused = api.post(path, json=body, headers={**bearer(secret), **headers})
    assert refused.status_code == 401, refused.get_data(as_text=True)
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="atm-web"'
    assert (raw.journal_count(), raw.rows("SELECT * FROM idempotency_keys ORDER BY key")) == (journal, keys)


@pytest.mark.parametrize("kind", ["deposit", "withdrawal", "transfer"])
def test_a_write_after_another_tokens_revocation_is_made_exactly_once(servers, clock, raw, kind):
    """The write met the moved generation and wrote nothing; the token, looked up again, is still good, so the
    view runs once more and the write is made then: once."""
    first, second = servers
    _, secret = new_token(first, clock, "stays")
    other, _ = new_token(first, clock, "leaves")
    api = second.test_client()
    assert api.post("/accounts/C1/deposit", json={"amount": 10}, headers=bearer(secret)).status_code == 200
    journal = raw.journal_count()
    revoke(first, clock, other)
    path, body, _ = REQUESTS[kind]
    answer = api.post(path, json=body, headers=bearer(secret))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert raw.journal_count() == journal + (2 if kind == "transfer" else 1)
    balance = {"deposit": 15, "withdrawal": 9, "transfer": 9}[kind]
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = 'C1'") == balance * 100


@pytest.mark.postgresql_only
def test_in_one_group_a_stale_posting_holds_back_the_others_which_are_then_made_once(app, raw):
    """post_authorised_entries posts nothing when any posting's generation has moved: the stale one is refused
    (StaleAuthorisation) and the rest go into the next group, where they are made once."""
    db = app.extensions["atm_db"]

    async def scenario():
        current = await db.revocation_signal.generation()

        async def deposit(generation, number):
            granted = Authorisation(generation)
            if generation is not None:
                authorisation.set(granted)
            transaction = await accounts.deposit(db, number, 100, "test")
            return transaction, granted.checked

        async def transfer(generation):
            authorisation.set(Authorisation(generation))
            return await accounts.transfer(db, "G1", "G2", 50, "test")

        together = asyncio.gather(deposit("-1", "S1"), deposit(current, "G1"), deposit(None, "T1"),
                                  return_exceptions=True)
        results = await asyncio.wait_for(together, 10)
        results.append(await asyncio.gather(asyncio.wait_for(transfer("-1"), 10), return_exceptions=True))
        return results

    stale, current, teller, (stale_transfer,) = aio.run(scenario())
    assert isinstance(stale, StaleAuthorisation) and isinstance(stale_transfer, StaleAuthorisation)
    assert current[1] is True and current[0].balance_after_cents == 100
    assert teller[0].balance_after_cents == 100 and teller[1] is False  # a write made on no condition
    assert raw.rows("SELECT account_number, COUNT(*) FROM journal GROUP BY account_number ORDER BY 1") == [
        ("@clearing", 2), ("G1", 1), ("T1", 1)]
