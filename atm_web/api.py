"""Blueprint: the JSON API (the original ATM API's endpoints, kept, plus the journal)."""
from flask import Blueprint, current_app, g, render_template, request
from werkzeug.exceptions import BadRequest

from . import accounts, get_db
from .auth import token_required
from .errors import ApiError
from .money import json_number, to_cents
from .openapi import document

bp = Blueprint("api", __name__)


def _amount_cents() -> int:
    if not request.is_json:
        raise ApiError(422, "Content-Type must be application/json")
    try:
        body = request.get_json()
    except BadRequest:
        raise ApiError(422, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, 'request body must be a JSON object like {"amount": 12.5}')
    return to_cents(body.get("amount"), maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])


def _transaction(tx: accounts.Transaction) -> dict:
    return {"transaction_id": tx.id, "kind": tx.kind, "amount": json_number(tx.amount_cents),
            "balance_after": json_number(tx.balance_after_cents), "created_at": tx.created_at,
            "actor": tx.actor}


@bp.get("/is_alive")
def is_alive():
    return {"active": "true"}


@bp.get("/accounts/<number>/balance")
@token_required()
async def balance(number):
    account = await accounts.get_account(get_db(), number)
    return {"account_number": number, "balance": json_number(account.balance_cents)}


@bp.post("/accounts/<number>/deposit")
@token_required(write=True)
async def deposit(number):
    accounts.check_account_number(number)
    tx = await accounts.deposit(get_db(), number, _amount_cents(), g.token.actor)
    return {"account_number": number, "deposited_amount": json_number(tx.amount_cents),
            "balance": json_number(tx.balance_after_cents), "status": "success", "transaction_id": tx.id}


@bp.post("/accounts/<number>/withdraw")
@token_required(write=True)
async def withdraw(number):
    accounts.check_account_number(number)
    tx = await accounts.withdraw(get_db(), number, _amount_cents(), g.token.actor)
    return {"account_number": number, "withdrawn_amount": json_number(tx.amount_cents),
            "balance": json_number(tx.balance_after_cents), "status": "success", "transaction_id": tx.id}


@bp.get("/accounts/<number>/transactions")
@token_required()
async def transactions(number):
    limit = request.args.get("limit", "20")
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= accounts.HISTORY_MAX):
        raise ApiError(422, f"limit must be a whole number from 1 to {accounts.HISTORY_MAX}")
    rows, next_cursor = await accounts.history(get_db(), number, int(limit), request.args.get("cursor"))
    return {"account_number": number, "transactions": [_transaction(tx) for tx in rows],
            "next_cursor": next_cursor}


@bp.get("/openapi.json")
def openapi():
    return document()


@bp.get("/docs")
def docs():
    return render_template("api/docs.html", spec=document())
