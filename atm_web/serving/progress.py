"""Progress of a long command (verify, copy-ledger) on a terminal."""
import time


class Progress:
    """A long run's progress on a terminal, on one line rewritten: rows done of the total, the rate, the time
    left. Call it with the rows done; set_total first."""

    def __init__(self, write, label: str):
        self.write, self.label = write, label
        self.started = time.monotonic()
        self.total = 0

    def set_total(self, total: int) -> None:
        self.total = total

    def __call__(self, done: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = done / elapsed
        share = 100 * done // max(self.total, 1)
        text = f"\r{self.label}: {done:,} of {self.total:,} rows ({share}%), {rate:,.0f} rows/s"
        if rate and self.total > done:
            text += f", about {_duration((self.total - done) / rate)} left"
        self.write(text + "   ")

    def done(self) -> None:
        self.write("\n")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
