"""An app whose import fails in every worker, as a database lost between the preflight and a worker's start
would: serve.run_hypercorn must exit non-zero for it (hypercorn alone exits 0)."""
import sys

sys.exit(3)
