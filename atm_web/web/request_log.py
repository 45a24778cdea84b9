"""One log line per request, for an operator to search: the time, the method, the route's pattern (as
/accounts/<number>/deposit, never the raw path), the status, the milliseconds and a request id, also sent back as
X-Request-ID. Never a query string, a body, a name, a token or a card number: only what a route's pattern and a
status say. LOG_FORMAT=json writes the same fields as one JSON object a line, for a platform's log drain.

The id is the router's when it sent a plain one (Heroku and Render send X-Request-ID), else one made here.
"""
import atexit
import contextlib
import json
import logging
import os
import queue
import re
import secrets
import sys
import threading
import time

from flask import g, request

from atm_web.core.clock import log_time

log = logging.getLogger("atm_web.requests")
_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class _Lines:
    """Log lines written to stderr (whatever sys.stderr is: a server's, or a test's capture) by a thread of their
    own. A request's thread only queues its line: it never makes the write, nor waits behind another request's
    (a handler's lock held across a write is a convoy under the GIL: measured 15-30% of the deposits a second at
    64 clients). One thread per process, started by the first line (a forked worker starts its own)."""

    def __init__(self):
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.pid = None

    def put(self, line: str) -> None:
        if self.pid != os.getpid():
            self.pid = os.getpid()
            threading.Thread(target=self._write, name="request-log", daemon=True).start()
            atexit.register(self.written, 2.0)
        self.queue.put((sys.stderr, line))  # the stream of the moment the line was made

    def _write(self) -> None:
        while True:
            items = [self.queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(items) < 1000:
                    items.append(self.queue.get_nowait())
            streams: dict = {}
            for item in items:
                if isinstance(item, tuple):
                    streams.setdefault(item[0], []).append(item[1])
            for stream, lines in streams.items():
                with contextlib.suppress(Exception):  # a closed stream loses lines, never a request
                    stream.write("\n".join(lines) + "\n")
                    stream.flush()
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()

    def written(self, timeout_s: float = 5.0) -> None:
        """Wait until every line queued so far is written (at exit; a test reading stderr)."""
        if self.pid == os.getpid():
            done = threading.Event()
            self.queue.put(done)
            done.wait(timeout_s)


_lines = _Lines()
written = _lines.written


class _Queued(logging.Handler):
    def emit(self, record) -> None:
        _lines.put(self.format(record))


def _started() -> None:
    g.request_started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _GIVEN_ID.fullmatch(given) else secrets.token_hex(8)


def _fields(response) -> dict:
    started = g.get("request_started")
    return {"time": log_time(),
            "method": request.method, "route": request.url_rule.rule if request.url_rule else "(no route)",
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1) if started is not None else None,
            "request_id": g.get("request_id", "-")}


def register(app) -> None:
    """Before anything else of each request (the first before_request), and after its answer is made."""
    as_json = app.config["LOG_FORMAT"] == "json"
    if not log.handlers:
        handler = _Queued()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False  # not again through the package's handler

    def logged(response):
        if "request_id" not in g:  # refused before this request's first hook ran (none should be)
            _started()
        fields = _fields(response)
        response.headers["X-Request-ID"] = fields["request_id"]
        if as_json:
            log.info(json.dumps(fields))
        else:
            log.info("%s %s %s %s %sms id=%s", fields["time"], fields["method"], fields["route"], fields["status"],
                     fields["ms"], fields["request_id"])
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, _started)
    app.after_request(logged)
