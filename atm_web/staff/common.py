"""What the staff modules (tellers, login sessions, tokens, login locks) share: how secrets are kept, and how often
last-seen times are refreshed.

Times passed in as `now` are Unix seconds from the app's clock (clock.py), so tests can move time. Secrets (session
ids, tokens) are stored only as SHA-256 hashes: they are long random strings, so a fast hash is the right one.
Passwords are hashed slowly (tellers.hash_password), never on the event loop.
"""
import hashlib

TOUCH_EVERY_S = 60  # last-seen / last-used times are refreshed at most this often (fewer writes)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
