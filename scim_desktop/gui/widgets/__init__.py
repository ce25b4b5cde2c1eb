"""The window's widgets: request log and detail, users and groups, faults, connection."""
