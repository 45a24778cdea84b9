"""Streams (Connection.chunks and stream): every row once, in order, a chunk at a time; other statements on the
same connection between chunks (verify records chain heads as it goes); a caller that stops early leaves its
connection fit for the next statement, on both engines."""
import pytest

from atm_web.serving import aio
from atm_web.storage.common import STREAM_CHUNK

from conftest import close_app, make_app

ROWS = 2 * STREAM_CHUNK + 7  # three chunks, the last a short one
SERIES = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT i, 'row ' || i FROM n "
          "ORDER BY i")


def test_chunks_and_rows_come_whole_and_in_order(database):
    app = make_app(database)
    db = app.extensions["atm_db"]

    async def read(conn):
        chunks, between = [], []
        async for rows in conn.chunks(SERIES, (ROWS,)):
            chunks.append(rows)
            between.append((await conn.fetchall("SELECT COUNT(*) FROM accounts"))[0][0])
        ahead = [rows async for rows in conn.chunks(SERIES, (ROWS,), alone=True)]
        assert ahead == chunks
        rows = []
        async for row in conn.stream(SERIES, (ROWS,)):
            rows.append(row)
            if len(rows) % STREAM_CHUNK == 1:
                await conn.execute("SELECT 1")
        return chunks, between, rows

    try:
        chunks, between, rows = aio.run(db.read(read, snapshot=True, long=True))
    finally:
        close_app(app)
    assert [len(rows) for rows in chunks] == [STREAM_CHUNK, STREAM_CHUNK, 7]
    assert len(between) == 3
    assert [tuple(row) for rows in chunks for row in rows] == [(i, f"row {i}") for i in range(1, ROWS + 1)]
    assert [tuple(row) for row in rows] == [(i, f"row {i}") for i in range(1, ROWS + 1)]


@pytest.mark.parametrize("alone", [False, True], ids=["between", "alone"])
def test_a_caller_that_stops_early_leaves_the_connection_fit_for_the_next_statement(database, alone):
    app = make_app(database)
    db = app.extensions["atm_db"]

    async def read(conn):
        seen = []
        for _ in range(3):  # three times on one connection, in one snapshot, each stopped at its first chunk
            stream = conn.chunks(SERIES, (ROWS,), alone=alone)  # alone: the next chunk read ahead
            async for rows in stream:
                seen.append(len(rows))
                break
            await stream.aclose()  # as `async with contextlib.aclosing` does: the read ahead answered first
            seen.append((await conn.fetchall("SELECT COUNT(*) FROM journal"))[0][0])
        return seen

    try:
        assert aio.run(db.read(read, snapshot=True)) == [STREAM_CHUNK, 0] * 3
        assert aio.run(db.read(lambda conn: conn.fetchall("SELECT 1"))) == [(1,)]  # the pool's connection still good
    finally:
        close_app(app)
