"""Kafka connection settings: plain by default, TLS and SASL when production asks for them."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError

from send_shared.kafka_connection import KafkaConnection


def test_a_plain_connection_adds_nothing_to_the_clients() -> None:
    assert KafkaConnection(kafka_bootstrap_servers="k:9092").client_options() == {"bootstrap_servers": "k:9092"}


def test_sasl_over_tls_gives_every_client_a_verifying_context_and_credentials() -> None:
    options = KafkaConnection(
        kafka_bootstrap_servers="k:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="svc-referrals",
        kafka_sasl_password="s3cret",
    ).client_options()
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {
        "bootstrap_servers": "k:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc-referrals",
        "sasl_plain_password": "s3cret",
    }


@pytest.mark.parametrize(
    "settings",
    [
        {"kafka_security_protocol": "SASL_SSL"},
        {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_username": "u", "kafka_sasl_password": ""},
        {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/tmp/client.pem"},
        {"kafka_security_protocol": "TLS"},
    ],
)
def test_an_incomplete_or_unknown_setting_is_refused_at_start(settings: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        KafkaConnection(**settings)  # type: ignore[arg-type]


def test_a_missing_ca_file_fails_loudly(tmp_path: Path) -> None:
    connection = KafkaConnection(kafka_security_protocol="SSL", kafka_ssl_cafile=str(tmp_path / "absent.pem"))
    with pytest.raises(FileNotFoundError):
        connection.client_options()
