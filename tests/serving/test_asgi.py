"""Our ASGI adapter (atm_web/asgi.py): the WSGI environ it gives Flask, a stalled body; it serves in tests/e2e."""
import pytest

from atm_web.serving.asgi import ThreadPoolWSGI, build_environ


def scope(**changes):
    base = {"type": "http", "method": "POST", "path": "/accounts/A1/deposit", "query_string": b"limit=5&x=%C3%A9",
            "http_version": "1.1", "scheme": "https", "server": ("127.0.0.1", 8000), "client": ("10.0.0.7", 51234),
            "root_path": "", "headers": [(b"content-type", b"application/json"), (b"x-forwarded-for", b"1.1.1.1"),
                                         (b"x-forwarded-for", b"2.2.2.2"), (b"authorization", b"Bearer atm_x")]}
    return {**base, **changes}


def test_request_line_server_and_client():
    environ = build_environ(scope(), b"")
    assert environ["REQUEST_METHOD"] == "POST"
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("", "/accounts/A1/deposit")
    assert environ["QUERY_STRING"] == "limit=5&x=%C3%A9"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"], environ["SERVER_PROTOCOL"]) == ("127.0.0.1", "8000",
                                                                                             "HTTP/1.1")
    assert (environ["wsgi.url_scheme"], environ["REMOTE_ADDR"]) == ("https", "10.0.0.7")
    assert environ["wsgi.version"] == (1, 0) and environ["wsgi.multithread"] and not environ["wsgi.run_once"]


def test_headers_become_cgi_names_and_repeats_are_joined():
    environ = build_environ(scope(), b"")
    assert environ["CONTENT_TYPE"] == "application/json" and "HTTP_CONTENT_TYPE" not in environ
    assert environ["HTTP_X_FORWARDED_FOR"] == "1.1.1.1,2.2.2.2"
    assert environ["HTTP_AUTHORIZATION"] == "Bearer atm_x"


def test_unicode_path_is_carried_as_latin1_bytes_as_pep_3333_asks():
    environ = build_environ(scope(path="/accounts/é/balance"), b"")
    assert environ["PATH_INFO"].encode("latin-1").decode("utf-8") == "/accounts/é/balance"


@pytest.mark.parametrize("root, path, script_name, path_info", [
    ("/atm", "/atm/accounts/A1/balance", "/atm", "/accounts/A1/balance"),
    ("/atm", "/atm", "/atm", "/"),
    ("/atm", "/elsewhere", "", "/elsewhere"),
])
def test_root_path_becomes_script_name(root, path, script_name, path_info):
    environ = build_environ(scope(root_path=root, path=path), b"")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == (script_name, path_info)


def test_body_is_given_with_its_own_length_chunked_or_not():
    chunked = scope(headers=[(b"transfer-encoding", b"chunked")])
    environ = build_environ(chunked, b'{"amount": 1}')
    assert environ["CONTENT_LENGTH"] == "13" and "HTTP_TRANSFER_ENCODING" not in environ
    assert environ["wsgi.input"].read() == b'{"amount": 1}'
    assert "CONTENT_LENGTH" not in build_environ(scope(method="GET", headers=[]), b"")


def test_a_stalled_body_is_answered_408_and_the_app_never_called():
    import asyncio
    called, sent = [], []

    async def receive():
        await asyncio.sleep(3600)  # headers came, the body never does

    async def send(message):
        sent.append(message)

    adapter = ThreadPoolWSGI(lambda environ, start: called.append(environ), 1024, threads=1, body_timeout_s=0.2)
    asyncio.run(asyncio.wait_for(adapter(scope(method="POST"), receive, send), 5))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert b"did not arrive" in sent[1]["body"] and called == []


def lifespan_and_a_deposit(adapter, token):
    """Serve as hypercorn's worker does: lifespan start-up, one deposit, shutdown. What happened, in order."""
    import asyncio
    import json

    from atm_web.serving import aio
    seen = {}

    async def serve():
        inbox, sent = asyncio.Queue(), []

        async def send(message):
            sent.append(message)

        lifespan = asyncio.create_task(adapter({"type": "lifespan"}, inbox.get, send))
        await inbox.put({"type": "lifespan.startup"})
        while not sent and not lifespan.done():
            await asyncio.sleep(0.01)
        seen["started"] = [message["type"] for message in sent]
        seen["loop is the server's"] = aio.loop() is asyncio.get_running_loop()
        if seen["started"] != ["lifespan.startup.complete"]:
            return
        body = json.dumps({"amount": "2.50"}).encode()
        request, answer = asyncio.Queue(), []
        await request.put({"type": "http.request", "body": body, "more_body": False})

        async def answered(message):
            answer.append(message)

        await adapter(scope(path="/accounts/L1/deposit", query_string=b"", headers=[
            (b"content-type", b"application/json"), (b"authorization", f"Bearer {token}".encode())]),
            request.get, answered)
        seen["deposit"] = (answer[0]["status"], json.loads(answer[1]["body"]))
        await inbox.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(lifespan, 10)
        seen["stopped"] = [message["type"] for message in sent]

    asyncio.run(asyncio.wait_for(serve(), 30))
    return seen


def test_the_workers_loop_becomes_the_process_loop_and_the_database_moves_onto_it(database, monkeypatch):
    """At start-up the adapter makes the server's loop the process loop (one loop per worker, not two) and
    reopens the database on it; views' calls then run there; shutdown closes the database."""
    import time

    from atm_web.serving import aio

    from conftest import add_token, make_app
    monkeypatch.setattr(aio, "_loop", None)  # a start-up loop of this test's own: the suite's is left running
    app = make_app(database)
    token = add_token(app)
    startup_loop, db = aio.loop(), app.extensions["atm_db"]
    seen = lifespan_and_a_deposit(ThreadPoolWSGI(app, 1024, threads=2, database=db), token)
    assert seen["started"] == ["lifespan.startup.complete"] and seen["loop is the server's"]
    status, answer = seen["deposit"]
    assert status == 200 and (answer["account_number"], answer["balance"]) == ("L1", 2.5)
    assert seen["stopped"] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    deadline = time.monotonic() + 5
    while startup_loop.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not startup_loop.is_running()  # the start-up loop's thread is gone: nothing was left on it
    assert db._writer is None             # closed at shutdown


def test_a_database_that_cannot_open_on_the_workers_loop_fails_the_start_up(tmp_path, monkeypatch):
    """lifespan.startup.failed, which hypercorn turns into the worker's non-zero exit (serve.py passes it on)."""
    from atm_web.serving import aio
    from atm_web.storage.sqlite import SQLiteDatabase
    monkeypatch.setattr(aio, "_loop", None)
    unopenable = SQLiteDatabase(str(tmp_path / "no such directory" / "atm.db"), 0)
    seen = lifespan_and_a_deposit(ThreadPoolWSGI(lambda environ, start: None, 1024, database=unopenable), "")
    assert seen["started"] == ["lifespan.startup.failed"]
