"""Serving: the command the Procfile runs, the ASGI adapter and the process's event loop."""
