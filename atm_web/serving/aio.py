"""The one long-lived event loop each process runs its coroutines on, so connections live as long as it does.

Served by hypercorn (the Procfile), a worker's process loop is hypercorn's own (uvloop, --worker-class uvloop):
the ASGI adapter adopts it at start-up and moves the database onto it, so a view thread's database call is one
hand-off to the loop that also serves the sockets (`make bench` measured +7% to +17% deposits against a loop
of our own in a second thread). Elsewhere (the CLI, the test client, the start-up check) it is a uvloop loop in
a daemon thread, started on first use; at interpreter exit what was opened on it is closed and it is stopped
(a uvloop loop still running while Python finalizes can crash the process with SIGSEGV: CI saw
`flask init-db` exit -11 after printing its result).
"""
import asyncio
import atexit
import contextlib
import os
import threading
import weakref

import uvloop

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None
_thread: threading.Thread | None = None  # the thread _loop runs in, if started here (so it may be stopped here)
_to_close: "weakref.WeakSet" = weakref.WeakSet()  # things with an async close(), opened on the process loop
EXIT_TIMEOUT_SECONDS = 10  # for each close at exit, and for the loop's thread to end


def _run_forever(target: asyncio.AbstractEventLoop) -> None:
    target.run_forever()
    target.close()


def loop() -> asyncio.AbstractEventLoop:
    """This process's loop: the adopted one, or one started in a daemon thread on first use (and again in a
    forked child)."""
    global _loop, _pid, _thread
    with _lock:
        if _loop is None or _pid != os.getpid():
            new_loop = uvloop.new_event_loop()
            _thread = threading.Thread(target=_run_forever, args=(new_loop,), name="atm-web-loop", daemon=True)
            _thread.start()
            _loop, _pid = new_loop, os.getpid()
            _to_close.clear()  # a forked child's copies belong to its parent's loop
        return _loop


def adopt(server_loop: asyncio.AbstractEventLoop) -> None:
    """Make server_loop (a server's, running in this process) the process loop from now on, and stop the thread
    loop if one was started. Whatever was opened on the old loop must be closed there first (asgi.py does)."""
    global _loop, _pid, _thread
    with _lock:
        old = _loop if _thread is not None and _pid == os.getpid() else None
        _loop, _pid, _thread = server_loop, os.getpid(), None
    if old is not None and old is not server_loop:
        old.call_soon_threadsafe(old.stop)


def run(coro):
    """Run a coroutine on the process loop from any other thread and return its result."""
    target = loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is target:
        coro.close()
        raise RuntimeError("aio.run() called from the process loop itself; await the coroutine instead")
    return asyncio.run_coroutine_threadsafe(coro, target).result()


def close_at_exit(resource) -> None:
    """Have resource.close() (a coroutine) run on the thread loop at interpreter exit, unless it is gone by then.
    A server's adopted loop needs none of this: the ASGI lifespan shutdown closes the database on it."""
    _to_close.add(resource)


@atexit.register
def _stop_thread_loop() -> None:
    """Close what is still open on this process's thread loop, stop the loop and wait for its thread to end."""
    with _lock:
        target, thread = (_loop, _thread) if _pid == os.getpid() else (None, None)
    if thread is None or not thread.is_alive():
        return
    for resource in list(_to_close):
        with contextlib.suppress(Exception):  # exiting anyway: a close that fails or hangs must not stop the exit
            asyncio.run_coroutine_threadsafe(resource.close(), target).result(EXIT_TIMEOUT_SECONDS)
    target.call_soon_threadsafe(target.stop)
    thread.join(EXIT_TIMEOUT_SECONDS)
