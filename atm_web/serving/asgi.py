"""How hypercorn runs the Flask app (wsgi.py): an ASGI adapter of our own, with a thread pool of our size.

At start-up (ASGI lifespan) it makes the worker's loop the process loop (aio.adopt) and reopens the database
there; at shutdown it closes the database, after the writes in flight have committed.

hypercorn's built-in WSGI support runs the app on its loop's default thread pool (min(32, CPUs + 4) threads,
not configurable: 6 on two cores) and hands each piece of a response back to the loop with a blocking round
trip. Here the app runs on THREADS threads per worker and hands its whole response back at once: `make bench`
measured +22% deposits at 16 connections and +41% at 64 (README, Benchmark). So responses are buffered, which
suits an app whose largest answer is a page of a few hundred rows. A request body is read whole, chunked or not,
but never much past max_body_bytes (Flask answers 413 for a longer one) and never for longer than BODY_TIMEOUT_S
(hypercorn has no such bound by default: a client that declared a body and sent none held its worker for good).
"""
import asyncio
import io
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from atm_web.serving import aio

THREADS = 16  # per worker: 6 (hypercorn's pool here) measured 20% slower at 64 connections, 32 no faster
BODY_TIMEOUT_S = 10  # a request body (at most 16 KiB) must arrive whole within this, else 408 and close
log = logging.getLogger(__name__)
TIMED_OUT = json.dumps({"detail": f"the request body did not arrive within {BODY_TIMEOUT_S} s"}).encode()


class ThreadPoolWSGI:
    """An ASGI app that runs a WSGI app on its own threads; HTTP only (websockets are closed)."""

    def __init__(self, wsgi_app, max_body_bytes: int, threads: int = THREADS, body_timeout_s: float = BODY_TIMEOUT_S,
                 database=None, schedule=None):
        self.wsgi_app = wsgi_app
        self.database = database  # storage.Database opened at import on the start-up loop, or None
        self.schedule = schedule  # backups.Schedule started on the server's loop, or None
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="wsgi")

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            await send({"type": "websocket.close"})
            return
        try:
            async with asyncio.timeout(self.body_timeout_s):  # no task of its own, unlike wait_for
                body = await self._read_body(receive)
        except TimeoutError:  # declared a body and stalled: answer, and let the connection close
            await send({"type": "http.response.start", "status": 408, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(TIMED_OUT)).encode()),
                (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": TIMED_OUT})
            return
        if body is None:  # the client went away mid-request
            return
        environ = build_environ(scope, body)
        status, headers, content = await asyncio.get_running_loop().run_in_executor(self.pool, self._run, environ)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._move_to_server_loop()
                except Exception as error:  # hypercorn then stops the worker with a non-zero status
                    log.exception("could not open the database on the server's loop")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                if self.schedule is not None:
                    self.schedule.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.schedule is not None:
                    await self.schedule.stop()
                if self.database is not None:
                    await self.database.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _move_to_server_loop(self) -> None:
        if self.database is not None:  # its connections belong to the start-up loop: close them there
            await asyncio.get_running_loop().run_in_executor(None, aio.run, self.database.close())
        aio.adopt(asyncio.get_running_loop())
        if self.database is not None:
            await self.database.open()

    async def _read_body(self, receive) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes or not message.get("more_body"):
                return bytes(body)  # past the limit, stop reading: Flask finds it too long (413)

    def _run(self, environ: dict) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """On a pool thread: call the WSGI app (PEP 3333) and collect its status, headers and body."""
        chunks: list[bytes] = []
        response = {}

        def start_response(status, headers, exc_info=None):
            # Nothing is sent before the app returns, so a second call (an error page) simply replaces the first.
            response["status"] = int(status.split(" ", 1)[0])
            response["headers"] = [(name.lower().encode("latin-1"), value.encode("latin-1"))
                                   for name, value in headers]
            return chunks.append

        body = self.wsgi_app(environ, start_response)
        try:
            chunks.extend(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        return response["status"], response["headers"], b"".join(chunks)


def build_environ(scope: dict, body: bytes) -> dict:
    """The WSGI environ (PEP 3333) of an ASGI HTTP scope and its body, read whole.

    The body is given with its own length, chunked or not (Werkzeug reads no chunked body from a plain WSGI
    server); one cut short past the limit has a length beyond MAX_CONTENT_LENGTH, so Flask answers 413.
    """
    root = scope.get("root_path", "")
    path = scope["path"]
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    else:
        root = ""
    server = scope.get("server") or ("localhost", 80)
    environ = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope["query_string"].decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"] = scope["client"][0]
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        key = {"content-length": "CONTENT_LENGTH", "content-type": "CONTENT_TYPE"}.get(
            name, "HTTP_" + name.upper().replace("-", "_"))
        value = raw_value.decode("latin-1")
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    if body or "CONTENT_LENGTH" in environ:
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def for_flask(flask_app) -> ThreadPoolWSGI:
    """What the Procfile serves (wsgi.py): the Flask app behind this adapter, with its database and, when
    BACKUP_EVERY_MINUTES is set, the backups' schedule."""
    from atm_web.serving.backups import Schedule
    config, database = flask_app.config, flask_app.extensions["atm_db"]
    schedule = (Schedule(database, config["BACKUP_DIR"], config["BACKUP_EVERY_MINUTES"], config["BACKUP_KEEP"])
                if config["BACKUP_EVERY_MINUTES"] else None)
    return ThreadPoolWSGI(flask_app, config["MAX_CONTENT_LENGTH"], database=database, schedule=schedule)
