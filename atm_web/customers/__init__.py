"""Customers: their records and the accounts they hold, and the large-cash rule and worklist."""
