"""Fixtures for the storage contract: moto's S3 server is the session fixture ``moto``
(tests/conftest.py)."""
