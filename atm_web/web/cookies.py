"""The staff session cookie: signed, holding only a random session id (the staff session itself is in the database,
staff/login_sessions.py) and the CSRF token; HttpOnly, SameSite=Lax, and Secure with the __Host- prefix over HTTPS.
It carries no personal data: a flashed message names customers by number."""
from flask import request
from flask.sessions import SecureCookieSessionInterface


class StaffSessionCookie(SecureCookieSessionInterface):
    def get_cookie_name(self, app):
        return "__Host-atm_session" if request.is_secure else "atm_session"

    def get_cookie_secure(self, app):
        return request.is_secure

    def get_cookie_domain(self, app):
        return None

    def get_cookie_path(self, app):
        return "/"
