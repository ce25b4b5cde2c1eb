"""Qt item models fed in batches from the event bridge: requests, users, groups."""
