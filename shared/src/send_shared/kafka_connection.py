"""How every Kafka client of this project connects: bootstrap servers, TLS and SASL, from the environment.

Production Kafka runs with TLS and SASL/SCRAM, one principal per organisation or service; the embedded
broker and docker-compose's Kafka take plain connections. Services, the dead-letter CLI and the store
replay all build their clients with :func:`client_options`, so one set of variables configures them all.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaConnection(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kafka_bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated Kafka bootstrap servers.")
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (production: SASL_SSL)."
    )
    kafka_sasl_mechanism: SaslMechanism = Field("SCRAM-SHA-512", description="SASL mechanism when SASL is used.")
    kafka_sasl_username: str | None = Field(None, description="SASL user (the service's own Kafka principal).")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password.")
    kafka_ssl_cafile: str | None = Field(
        None, description="CA bundle that signed the brokers' certificates (default: the system's CAs)."
    )
    kafka_ssl_certfile: str | None = Field(None, description="Client certificate, for brokers that ask for mTLS.")
    kafka_ssl_keyfile: str | None = Field(None, description="Private key of the client certificate.")

    @model_validator(mode="after")
    def _complete(self) -> KafkaConnection:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(f"{self.kafka_security_protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"bootstrap_servers": self.kafka_bootstrap_servers}
        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = protocol
        if protocol.endswith("SSL"):
            options["ssl_context"] = create_ssl_context(
                cafile=self.kafka_ssl_cafile, certfile=self.kafka_ssl_certfile, keyfile=self.kafka_ssl_keyfile
            )
        if protocol.startswith("SASL"):
            assert self.kafka_sasl_password is not None  # checked by _complete
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password.get_secret_value(),
            )
        return options


@functools.cache
def _security_options() -> tuple[tuple[str, Any], ...]:
    options = KafkaConnection().client_options()
    options.pop("bootstrap_servers")
    return tuple(options.items())


def client_options(bootstrap_servers: str) -> dict[str, Any]:
    """Connection keyword arguments for an aiokafka client of ``bootstrap_servers``, with the TLS and SASL
    settings of this process's environment (read once)."""
    return {"bootstrap_servers": bootstrap_servers, **dict(_security_options())}
