"""The one long-lived event loop each process runs its coroutines on, so connections live as long as it does.

It is a uvloop loop, as hypercorn's workers are (Procfile: --worker-class uvloop): each database call is two
hand-offs between threads, and uvloop's are cheaper (`make bench` measured +16% deposits per worker).
"""
import asyncio
import os
import threading

import uvloop

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid: int | None = None


def loop() -> asyncio.AbstractEventLoop:
    """This process's loop, started in a daemon thread on first use (and again in a forked child)."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid():
            new_loop = uvloop.new_event_loop()
            threading.Thread(target=new_loop.run_forever, name="atm-web-loop", daemon=True).start()
            _loop, _pid = new_loop, os.getpid()
        return _loop


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
