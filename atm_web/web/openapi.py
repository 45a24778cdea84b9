"""The OpenAPI 3.1 document of the JSON API, served at /openapi.json and rendered by Swagger UI at /docs.

Its patterns and bounds come from rules.py, the ones the API enforces."""
from functools import lru_cache

from atm_web.core.money import json_number
from atm_web.core.rules import (
    ACCOUNT_NUMBER_PATTERN,
    ACCOUNT_NUMBER_RULE,
    HISTORY_MAX,
    KINDS,
    LEDGER_BUSY,
    LIMIT_MAX_CENTS,
    REASON_MAX,
)

ACCOUNT_NUMBER_PARAMETER = {"name": "number", "in": "path", "required": True,
                  "description": f"Account number: {ACCOUNT_NUMBER_RULE}",
                  "schema": {"type": "string", "pattern": f"^{ACCOUNT_NUMBER_PATTERN}$"}}
MONEY = {"type": "number", "description": "Amount in the currency's units, at most 2 decimal places"}
AMOUNT = {"oneOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
                    {"type": "string", "pattern": r"^([1-9][0-9]{0,5}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))$"}],
          "description": "Greater than 0, at most 2 decimal places, at most MAX_AMOUNT (default 1,000,000.00); "
                         "a number or a decimal string"}


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERRORS = {
    "401": _error("Missing, unknown or revoked API token (WWW-Authenticate: Bearer)"),
    "404": _error("No such path"),
    "405": _error("Method not allowed on this path"),
    "422": _error("Invalid account number, amount, query or body"),
    "500": _error("Unexpected error (details are logged, never returned)"),
}
WRITE_ERRORS = {
    **ERRORS,
    "403": _error("The token is read-only"),
    "413": _error("Request body larger than 16 KiB"),
    "503": _error(f"{LEDGER_BUSY} (Retry-After: 1)"),
}


def _ok(schema_name: str, description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}}}


IDEMPOTENCY_KEY_HEADER = {"name": "Idempotency-Key", "in": "header", "required": False,
                   "description": "Makes a retry safe: the same key (per token, kept 24 hours) with the same body "
                                  "gets the first answer again with Idempotent-Replayed: true and writes nothing; "
                                  "with a different body, 422.",
                   "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"}}
SECURITY = [{"bearer": []}]


def _money_post(summary: str, result: str, extra: dict, body: str = "AmountRequest", params=None) -> dict:
    return {
        "summary": summary,
        "security": SECURITY,
        "parameters": [*(params if params is not None else [ACCOUNT_NUMBER_PARAMETER]), IDEMPOTENCY_KEY_HEADER],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}},
        "responses": {"200": _ok(result, f"{summary}: done and durable"), **extra, **WRITE_ERRORS},
    }


HOLD_STATUSES = ("pending", "captured", "voided", "expired")
_MAYBE_MONEY = {"type": ["number", "null"]}
ATM_SCHEMA = {"type": "object", "required": ["atm_id", "name", "location", "account_number", "expected_cash",
                                             "cassettes", "last_replenishment"], "properties": {
    "atm_id": {"type": "integer"}, "name": {"type": "string"}, "location": {"type": "string"},
    "account_number": {"type": "string", "description": "Its cash account, @atm-<id>"},
    "expected_cash": {"type": "number", "description": "The cash the books say it holds"},
    "cassettes": {"type": "array", "items": {"type": "object", "required": ["position", "denomination", "notes"],
                                             "properties": {"position": {"type": "integer"},
                                                            "denomination": {"type": "number"},
                                                            "notes": {"type": "integer",
                                                                      "description": "Expected notes"}}}},
    "last_replenishment": {"type": ["object", "null"], "properties": {
        "replenishment_id": {"type": "integer"},
        "status": {"type": "string", "enum": ["pending", "pending_signoff", "done", "cancelled"]},
        "entered_by": {"type": "string"}, "entered_at": {"type": "string"},
        "confirmed_by": {"type": ["string", "null"]}, "confirmed_at": {"type": ["string", "null"]},
        "counted": _MAYBE_MONEY, "loaded": _MAYBE_MONEY, "expected": _MAYBE_MONEY, "variance": _MAYBE_MONEY}}}}
HOLD_ID_PARAMETER = {"name": "hold_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
HOLD_SCHEMA = {"type": "object",
               "required": ["hold_id", "account_number", "status", "amount", "created_at", "expires_at", "memo",
                            "ended_at", "captured_amount", "transaction_id"],
               "properties": {"hold_id": {"type": "integer"}, "account_number": {"type": "string"},
                              "status": {"type": "string", "enum": list(HOLD_STATUSES)}, "amount": MONEY,
                              "created_at": {"type": "string", "description": "UTC"},
                              "expires_at": {"type": "string", "description": "UTC"},
                              "memo": {"type": "string"}, "ended_at": {"type": ["string", "null"]},
                              "captured_amount": {"oneOf": [MONEY, {"type": "null"}]},
                              "transaction_id": {"type": ["integer", "null"],
                                                 "description": "The capture's journal row"}}}


@lru_cache(maxsize=1)
def document() -> dict:
    result_fields = {"account_number": {"type": "string"}, "balance": MONEY,
                     "status": {"type": "string", "const": "success"},
                     "transaction_id": {"type": "integer", "description": "Journal row id"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "atm-web JSON API", "version": "1.0.0",
                 "description": "The original ATM API, kept, over an exact journaled ledger. Amounts are JSON "
                                "numbers with at most 2 decimal places; every error is JSON with `detail`."},
        "paths": {
            "/is_alive": {"get": {"summary": "Health check", "responses": {
                "200": _ok("Alive", "The server is up")}}},
            "/health/ready": {"get": {
                "summary": "Readiness: the database answers within a second and has the code's schema",
                "responses": {"200": _ok("Ready", "Ready to serve"),
                              "503": _ok("Ready", "Not ready: what is wrong, for an operator")}}},
            "/accounts/{number}/balance": {"get": {
                "summary": "Balance of an account (0 for an account not opened yet)",
                "security": SECURITY,
                "parameters": [ACCOUNT_NUMBER_PARAMETER],
                "responses": {"200": _ok("Balance", "The balance"), **ERRORS}}},
            "/accounts/{number}": {"get": {
                "summary": "An account with its holders (an empty list: no holder on file)",
                "security": SECURITY,
                "parameters": [ACCOUNT_NUMBER_PARAMETER],
                "responses": {"200": _ok("AccountWithHolders", "The account"), **ERRORS}}},
            "/accounts/{number}/deposit": {"post": _money_post(
                "Deposit (opens the account if new)", "DepositResult", {})},
            "/accounts/{number}/withdraw": {"post": _money_post(
                "Withdraw within the overdraft limit", "WithdrawResult",
                {"400": _error("Insufficient funds for withdrawal; nothing was written")})},
            "/balances": {"get": {
                "summary": "Balances of several accounts, read from one snapshot (0 for accounts not opened)",
                "security": SECURITY,
                "parameters": [{"name": "accounts", "in": "query", "required": True,
                                "description": "1 to 100 account numbers, comma separated",
                                "schema": {"type": "string",
                                           "pattern": f"^{ACCOUNT_NUMBER_PATTERN}(,{ACCOUNT_NUMBER_PATTERN})*$"}}],
                "responses": {"200": _ok("Balances", "The balances"), **ERRORS}}},
            "/reports/end-of-day": {"get": {
                "summary": "The end-of-day report of a business date: drawer sessions, the vault, totals, the proof",
                "security": SECURITY,
                "parameters": [{"name": "date", "in": "query", "required": True,
                                "description": "The business date, YYYY-MM-DD",
                                "schema": {"type": "string", "format": "date"}}],
                "responses": {"200": _ok("EndOfDay", "The report; status is open or closed"), **ERRORS}}},
            "/transfers": {"post": _money_post(
                "Transfer between accounts (the source must exist)", "TransferResult",
                {"400": _error("Insufficient funds for withdrawal; nothing was written")},
                body="TransferRequest", params=[])},
            "/accounts/{number}/overdraft-limit": {"put": {
                "summary": "Set an account's own overdraft limit, or null to follow MAX_DEBT (admin token; audited)",
                "security": SECURITY,
                "parameters": [ACCOUNT_NUMBER_PARAMETER],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["overdraft_limit"], "properties": {"overdraft_limit": {
                        "oneOf": [{"type": "number", "minimum": 0, "maximum": json_number(LIMIT_MAX_CENTS)},
                                  {"type": "null"}]}}}}}},
                "responses": {"200": _ok("OverdraftLimit", "The account with its limit"),
                              **{k: v for k, v in WRITE_ERRORS.items() if k != "403"},
                              "403": _error("The token does not have the admin scope"),
                              "404": _error("No such account"),
                              "422": _error("Invalid limit, or a limit below what the account owes")}}},
            "/transactions/{tx_id}/reversal": {"post": {
                "summary": "Reverse a journal entry (both legs of a transfer) with a reason (admin token; audited). "
                           "A retry with the same reason gets the first answer again",
                "security": SECURITY,
                "parameters": [{"name": "tx_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["reason"],
                    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": REASON_MAX}}}}}},
                "responses": {"200": _ok("Reversal", "The compensating entries"),
                              "400": _error("The reversal would break an overdraft limit; nothing was written"),
                              **{k: v for k, v in WRITE_ERRORS.items() if k != "403"},
                              "403": _error("The token does not have the admin scope"),
                              "404": _error("No such journal entry"),
                              "422": _error("A reversal, already reversed with another reason, or no reason")}}},
            "/accounts/{number}/transactions": {"get": {
                "summary": "Journal of an account, newest first, cursor paginated",
                "security": SECURITY,
                "parameters": [
                    ACCOUNT_NUMBER_PARAMETER,
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": HISTORY_MAX, "default": 20}},
                    {"name": "cursor", "in": "query", "required": False,
                     "description": "next_cursor from the previous page",
                     "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}],
                "responses": {"200": _ok("TransactionPage", "One page of journal rows"), **ERRORS}}},
            "/accounts/{number}/holds": {
                "post": {
                    "summary": "Place a hold: reserve an amount on an open customer account until it is captured, "
                               "voided or expires (it counts against available meanwhile)",
                    "security": SECURITY,
                    "parameters": [ACCOUNT_NUMBER_PARAMETER, IDEMPOTENCY_KEY_HEADER],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/HoldRequest"}}}},
                    "responses": {"201": _ok("PlacedHold", "The hold, pending, and the account's available after it"),
                                  "200": _ok("PlacedHold", "Never: a hold placed answers 201"),
                                  "400": _error("Insufficient funds for withdrawal; nothing was written"),
                                  **WRITE_ERRORS, "404": _error("No such account (or path)")}},
                "get": {
                    "summary": "The account's holds, newest first (at most 100)",
                    "security": SECURITY,
                    "parameters": [ACCOUNT_NUMBER_PARAMETER, {
                        "name": "status", "in": "query", "required": False,
                        "description": "Only the holds of this status (as of now: one past its time is expired)",
                        "schema": {"type": "string", "enum": list(HOLD_STATUSES)}}],
                    "responses": {"200": _ok("HoldList", "The holds"), **ERRORS}}},
            "/holds/{hold_id}": {"get": {
                "summary": "A hold (its status as of now: one past its expiry time is expired)",
                "security": SECURITY, "parameters": [HOLD_ID_PARAMETER],
                "responses": {"200": _ok("Hold", "The hold"), **ERRORS, "404": _error("No such hold")}}},
            "/holds/{hold_id}/capture": {"post": {
                "summary": "Capture a hold: post it as a withdrawal of its amount or less (the rest is released), "
                           "exactly once",
                "security": SECURITY, "parameters": [HOLD_ID_PARAMETER, IDEMPOTENCY_KEY_HEADER],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"amount": AMOUNT}}}}},
                "responses": {"200": _ok("CaptureResult", "The withdrawal posted, with hold_id"), **WRITE_ERRORS,
                              "404": _error("No such hold"),
                              "409": _ok("HoldEnded", "The hold ended already: its status (nothing posted)"),
                              "422": _error("An invalid amount, or one above the hold's")}}},
            "/holds/{hold_id}/void": {"post": {
                "summary": "Void a hold: release it, nothing posted, exactly once",
                "security": SECURITY, "parameters": [HOLD_ID_PARAMETER, IDEMPOTENCY_KEY_HEADER],
                "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {"200": _ok("Hold", "The hold, voided"), **WRITE_ERRORS,
                              "404": _error("No such hold"),
                              "409": _ok("HoldEnded", "The hold ended already: its status")}}},
            "/atms": {"get": {
                "summary": "Every ATM: its expected cash (its cash account's balance), expected notes per cassette and "
                           "last replenishment (an admin token)",
                "security": SECURITY,
                "responses": {"200": _ok("AtmList", "The ATMs"), **ERRORS}}},
            "/atms/{atm_id}": {"get": {
                "summary": "An ATM: its expected cash, expected notes per cassette and last replenishment (an admin "
                           "token)",
                "security": SECURITY, "parameters": [{"name": "atm_id", "in": "path", "required": True,
                                                      "schema": {"type": "integer", "minimum": 1}}],
                "responses": {"200": _ok("Atm", "The ATM"), **ERRORS, "404": _error("No such ATM")}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {
                "description": "OpenAPI 3.1 document", "content": {"application/json": {
                    "schema": {"type": "object"}}}}}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "An API token from an admin or the CLI"}},
                       "schemas": {
            "Error": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
            "Alive": {"type": "object", "required": ["active"],
                      "properties": {"active": {"type": "string", "const": "true"}}},
            "Ready": {"type": "object", "required": ["database", "migrations"], "properties": {
                "database": {"type": "string", "description": "ok, or what is wrong"},
                "migrations": {"type": "string", "description": "current, or what is wrong"}}},
            "Balance": {"type": "object", "required": ["account_number", "balance", "held", "available"],
                        "properties": {"account_number": {"type": "string"}, "balance": MONEY,
                                       "held": {**MONEY, "description": "Reserved by pending holds"},
                                       "available": {**MONEY, "description": "balance + overdraft limit - held"}}},
            "HoldRequest": {"type": "object", "required": ["amount"], "properties": {
                "amount": AMOUNT,
                "expires_in": {"type": "integer", "minimum": 1,
                               "description": "Seconds until it expires: at most HOLD_MAX_SECONDS (default 7 days); "
                                              "HOLD_SECONDS (default 600) when not given"},
                "memo": {"type": "string", "maxLength": REASON_MAX}}},
            "Hold": HOLD_SCHEMA,
            "Atm": ATM_SCHEMA,
            "AtmList": {"type": "object", "required": ["atms"], "properties": {
                "atms": {"type": "array", "items": {"$ref": "#/components/schemas/Atm"}}}},
            "PlacedHold": {**HOLD_SCHEMA, "required": [*HOLD_SCHEMA["required"], "available"],
                           "properties": {**HOLD_SCHEMA["properties"], "available": MONEY}},
            "HoldList": {"type": "object", "required": ["account_number", "holds"], "properties": {
                "account_number": {"type": "string"},
                "holds": {"type": "array", "items": {"$ref": "#/components/schemas/Hold"}}}},
            "CaptureResult": {"type": "object",
                              "required": ["account_number", "withdrawn_amount", "balance", "status",
                                           "transaction_id", "hold_id"],
                              "properties": {**result_fields, "withdrawn_amount": MONEY,
                                             "hold_id": {"type": "integer"}}},
            "HoldEnded": {"type": "object", "required": ["detail", "hold_id", "status"], "properties": {
                "detail": {"type": "string"}, "hold_id": {"type": "integer"},
                "status": {"type": "string", "enum": ["captured", "voided", "expired"]}}},
            "AmountRequest": {"type": "object", "required": ["amount"], "properties": {"amount": AMOUNT}},
            "DepositResult": {"type": "object",
                              "required": ["account_number", "deposited_amount", "balance", "status",
                                           "transaction_id"],
                              "properties": {**result_fields, "deposited_amount": MONEY}},
            "WithdrawResult": {"type": "object",
                               "required": ["account_number", "withdrawn_amount", "balance", "status",
                                            "transaction_id"],
                               "properties": {**result_fields, "withdrawn_amount": MONEY}},
            "AccountWithHolders": {
                "type": "object",
                "required": ["account_number", "exists", "opened_at", "balance", "overdraft_limit", "own_limit",
                             "held", "available", "holders"],
                "properties": {"account_number": {"type": "string"}, "exists": {"type": "boolean"},
                               "opened_at": {"type": ["string", "null"]}, "balance": MONEY,
                               "overdraft_limit": MONEY, "own_limit": {"type": "boolean"},
                               "held": {**MONEY, "description": "Reserved by pending holds"},
                               "available": {**MONEY, "description": "balance + overdraft limit - held"},
                               "holders": {"type": "array", "items": {
                                   "type": "object", "required": ["customer_id", "full_name"],
                                   "properties": {"customer_id": {"type": "integer"},
                                                  "full_name": {"type": "string"}}}}}},
            "OverdraftLimit": {"type": "object",
                               "required": ["account_number", "overdraft_limit", "own_limit", "balance", "available"],
                               "properties": {"account_number": {"type": "string"}, "overdraft_limit": MONEY,
                                              "own_limit": {"type": "boolean"}, "balance": MONEY,
                                              "available": MONEY}},
            "Reversal": {"type": "object", "required": ["status", "reversed_transaction_id", "reversals"],
                         "properties": {"status": {"type": "string", "const": "success"},
                                        "reversed_transaction_id": {"type": "integer"},
                                        "reversals": {"type": "array", "items": {"type": "object", "properties": {
                                            "transaction_id": {"type": "integer"},
                                            "account_number": {"type": "string"}, "kind": {"type": "string"},
                                            "amount": MONEY, "balance_after": MONEY,
                                            "reverses": {"type": "integer"}}}}}},
            "EndOfDay": {"type": "object", "required": ["business_date", "status", "sessions", "vault", "proof"],
                         "properties": {
                "business_date": {"type": "string", "format": "date"},
                "status": {"type": "string", "enum": ["open", "closed"]},
                "closed_at": {"type": ["string", "null"]}, "closed_by": {"type": ["string", "null"]},
                "sessions": {"type": "array", "items": {"type": "object", "properties": {
                    "drawer": {"type": "integer"}, "teller": {"type": "string"},
                    "status": {"type": "string", "enum": ["open", "pending_signoff", "closed"]},
                    "opened_at": {"type": "string"}, "closed_at": {"type": ["string", "null"]},
                    **{name: {**MONEY, "type": ["number", "null"]} for name in (
                        "opening_float", "cash_in", "cash_out", "from_vault", "to_vault", "expected", "counted",
                        "variance")},
                    "signed_off_by": {"type": ["string", "null"]}}}},
                "amounts_hidden": {"type": "boolean", "description": (
                    "True while a drawer of the day is open: its amounts, the totals' amounts, the vault's close and "
                    "the cash held are null until its blind count")},
                "vault": {"type": "object", "properties": {"open": MONEY, "close": {**MONEY, "type": ["number",
                                                                                                   "null"]}}},
                "by_kind": {"type": "object"}, "by_teller": {"type": "object"},
                "proof": {"type": "object", "properties": {
                    "balanced": {"type": "boolean"}, "cash_agrees": {"type": "boolean"},
                    "cash_held": {**MONEY, "type": ["number", "null"]},
                    "cash_accounts": {**MONEY, "type": ["number", "null"]}, "verify": {"type": "object"}}}}},
            "Balances": {"type": "object", "required": ["balances"], "properties": {
                "balances": {"type": "object", "additionalProperties": MONEY}}},
            "TransferRequest": {"type": "object", "required": ["from_account", "to_account", "amount"],
                                "properties": {"from_account": ACCOUNT_NUMBER_PARAMETER["schema"],
                                               "to_account": ACCOUNT_NUMBER_PARAMETER["schema"],
                                               "amount": AMOUNT}},
            "TransferResult": {"type": "object",
                               "required": ["status", "from_account", "to_account", "amount", "from_balance",
                                            "to_balance", "from_transaction_id", "to_transaction_id"],
                               "properties": {"status": {"type": "string", "const": "success"},
                                              "from_account": {"type": "string"}, "to_account": {"type": "string"},
                                              "amount": MONEY, "from_balance": MONEY, "to_balance": MONEY,
                                              "from_transaction_id": {"type": "integer"},
                                              "to_transaction_id": {"type": "integer"}}},
            "Transaction": {"type": "object", "required": ["transaction_id", "kind", "amount", "balance_after",
                                                           "created_at", "actor", "related_transaction_id", "memo"],
                            "properties": {"transaction_id": {"type": "integer"},
                                           "kind": {"type": "string", "enum": list(KINDS)},
                                           "amount": MONEY, "balance_after": MONEY,
                                           "created_at": {"type": "string", "format": "date-time"},
                                           "actor": {"type": "string"},
                                           "related_transaction_id": {"type": ["integer", "null"]},
                                           "memo": {"type": "string"}}},
            "TransactionPage": {"type": "object", "required": ["account_number", "transactions", "next_cursor"],
                                "properties": {"account_number": {"type": "string"},
                                               "transactions": {"type": "array", "items": {
                                                   "$ref": "#/components/schemas/Transaction"}},
                                               "next_cursor": {"type": ["string", "null"]}}},
        }},
    }
