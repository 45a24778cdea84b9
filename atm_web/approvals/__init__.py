"""Four eyes: requests held for a second person (requests) and their decisions (decisions)."""
