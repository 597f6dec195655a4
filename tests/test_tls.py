import ssl
from pathlib import Path

import certifi
import pytest

from chachaml.tls import client_context


def test_one_verifying_context_is_shared_by_the_process() -> None:
    context = client_context()
    assert context is client_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # a CA bundle was loaded


def test_ssl_cert_file_still_names_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = tmp_path / "one-ca.pem"
    bundle = Path(certifi.where()).read_text()
    one.write_text(bundle[: bundle.index("-----END CERTIFICATE-----") + 26])
    monkeypatch.setenv("SSL_CERT_FILE", str(one))
    client_context.cache_clear()
    try:
        assert client_context().cert_store_stats()["x509_ca"] == 1
    finally:
        client_context.cache_clear()
