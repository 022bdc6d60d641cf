"""The Hub-compatible HTTP API: thin handlers over services, one error table."""
