"""Cash and the day: drawers, the vault, the teller's counter, the end of the day and its chart."""
