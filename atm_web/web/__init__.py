"""The web layer: blueprints (the teller's, the administrators', the API...), their forms, the guards that let
staff and tokens in, the one place errors are answered, and the template helpers; register(app) puts it on the app.

Blueprints and the URL space each owns (no two share one):
  auth_pages      /login, /logout, /setup
  teller_pages    /, /teller/accounts/..., /teller/transactions, /teller/transfer, /teller/receipts/...
  customer_pages  /teller/customers/...
  drawer_pages    /teller/drawer/...
  request_pages   /teller/requests/...
  approval_pages  /approvals/...
  admin_pages     /admin/tellers, /admin/tokens, /admin/login-locks, /admin/audit, /admin/read-access,
                  /admin/verification
  vault_pages     /admin/vault/...       report_pages /admin/end-of-day/...    large_cash_pages /admin/large-cash/...
  atm_pages       /admin/atms/...
  atm_screen_pages /atm/... (the ATM screen: a paired kiosk's customer session)
  atm_device_api  /atm/device/... (JSON: a dispenser's agent reports a withdrawal's cash)
  api             the JSON API (the original ATM API's paths and what was added beside them), /openapi.json, /docs
"""
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()


def register(app) -> None:
    """CSRF, the request log, the session cookie, the row-id converter, every blueprint, the error handlers and
    template helpers."""
    from atm_web.web import (
        admin_pages,
        api,
        approval_pages,
        atm_device_api,
        atm_pages,
        atm_screen_pages,
        auth_pages,
        customer_pages,
        drawer_pages,
        errors,
        filters,
        large_cash_pages,
        report_pages,
        request_log,
        request_pages,
        teller_pages,
        vault_pages,
    )
    from atm_web.web.converters import RowIdConverter
    from atm_web.web.cookies import StaffSessionCookie
    csrf.init_app(app)
    request_log.register(app)  # its first hook goes before every other (CSRF's too)
    app.session_interface = StaffSessionCookie()
    app.url_map.converters["id"] = RowIdConverter
    for blueprint in (api.bp, auth_pages.bp, teller_pages.bp, customer_pages.bp, drawer_pages.bp, request_pages.bp,
                      approval_pages.bp, admin_pages.bp, vault_pages.bp, report_pages.bp, large_cash_pages.bp,
                      atm_pages.bp, atm_screen_pages.bp, atm_device_api.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # scripts authenticate per request with a token, not with a browser session
    csrf.exempt(atm_device_api.bp)  # a dispenser's agent sends its credential in a header, never by cookie
    api.register_json_paths(app, also=(f"{atm_device_api.bp.url_prefix}/",))  # JSON too, errors included
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))  # asked for by browsers
    filters.register(app)
    errors.register(app)
    auth_pages.announce_setup(app)
