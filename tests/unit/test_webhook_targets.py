"""Which webhook target addresses are refused (no DNS needed: IP literals)."""

from __future__ import annotations

import pytest

from modelyard.services.webhooks import refused_address


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
                                  "fe80::1", "fc00::1", "0.0.0.0", "100.64.0.1", "224.0.0.1"])
def test_non_global_addresses_are_refused(host: str) -> None:
    assert refused_address(host, allow_private=False)
    assert refused_address(host, allow_private=True) is None


@pytest.mark.parametrize("host", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_global_addresses_are_accepted(host: str) -> None:
    assert refused_address(host, allow_private=False) is None
