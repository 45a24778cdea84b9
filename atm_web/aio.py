"""The one long-lived event loop each process runs its coroutines on, so connections live as long as it does.

Served by hypercorn (the Procfile), a worker's process loop is hypercorn's own (uvloop, --worker-class uvloop):
the ASGI adapter adopts it at start-up and moves the database onto it, so a view thread's database call is one
hand-off to the loop that also serves the sockets (`make bench` measured +7% to +17% deposits against a loop
of our own in a second thread). Elsewhere (the CLI, the test client, the start-up check) it is a uvloop loop in
a daemon thread, started on first use.
"""
import asyncio
import os
import threading

import uvloop

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None
_own_thread = False  # whether _loop runs in a thread started here (and so may be stopped here)


def _run_forever(target: asyncio.AbstractEventLoop) -> None:
    target.run_forever()
    target.close()


def loop() -> asyncio.AbstractEventLoop:
    """This process's loop: the adopted one, or one started in a daemon thread on first use (and again in a
    forked child)."""
    global _loop, _pid, _own_thread
    with _lock:
        if _loop is None or _pid != os.getpid():
            new_loop = uvloop.new_event_loop()
            threading.Thread(target=_run_forever, args=(new_loop,), name="atm-web-loop", daemon=True).start()
            _loop, _pid, _own_thread = new_loop, os.getpid(), True
        return _loop


def adopt(server_loop: asyncio.AbstractEventLoop) -> None:
    """Make server_loop (a server's, running in this process) the process loop from now on, and stop the thread
    loop if one was started. Whatever was opened on the old loop must be closed there first (asgi.py does)."""
    global _loop, _pid, _own_thread
    with _lock:
        old, was_own = (_loop, _own_thread) if _pid == os.getpid() else (None, False)
        _loop, _pid, _own_thread = server_loop, os.getpid(), False
    if old is not None and was_own and old is not server_loop:
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
