"""One process of tests/e2e/test_cards.py: an app on the given database tries a card's PIN N times at once, at a
given moment, and prints how many of its tries reached the PIN's hash and what each was answered (JSON)."""
import asyncio
import json
import sys
import time

from atm_web import create_app
from atm_web.customers import cards, pins
from atm_web.serving import aio


def main(where: str, number: str, tries: int, start_at: float) -> None:
    config = {"SECRET_KEY": "e2e-secret", "PIN_KEY": "e2e-pin-key-0123456789"}
    config["DATABASE_URL" if where.startswith("postgresql://") else "DB_PATH"] = where
    db = create_app(config).extensions["atm_db"]
    checked, real = [], pins.pin_matches
    dummy = cards._dummy_hash(db.settings.pin_key)

    def counted(key, pin_hash, pin):
        if pin_hash != dummy:
            checked.append(pin)
        return real(key, pin_hash, pin)
    pins.pin_matches = counted

    async def burst():
        await asyncio.sleep(max(0.0, start_at - time.time()))
        return await asyncio.gather(*(cards.check_pin(db, number, f"{4000 + i}", time.time()) for i in range(tries)))
    outcomes = [check.outcome for check in aio.run(burst())]
    print(json.dumps({"checked": len(checked), "outcomes": outcomes}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
