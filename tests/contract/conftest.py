"""Fixtures for the storage contract: a real S3 endpoint (moto's server) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.s3 import AWS_ENV, AWS_UNSET, MotoServer, moto_server


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """One moto server for the session, with the process's AWS credentials pointed at it.

    Tests stay apart by using a fresh bucket each.
    """
    with pytest.MonkeyPatch.context() as mp:
        for name in AWS_UNSET:
            mp.delenv(name, raising=False)
        for name, value in AWS_ENV.items():
            mp.setenv(name, value)
        with moto_server() as server:
            yield server
