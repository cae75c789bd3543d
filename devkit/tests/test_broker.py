"""The embedded Tansu broker starts on a free port, answers Kafka clients, and stops."""

from __future__ import annotations

import socket

from aiokafka import AIOKafkaConsumer, TopicPartition

from send_devkit.broker import EmbeddedBroker, tansu_binary
from send_devkit.ports import free_port
from send_shared.kafka import ensure_topics, new_producer


def test_tansu_binary_is_shipped_and_executable() -> None:
    path = tansu_binary()
    assert path.is_file()
    assert path.stat().st_mode & 0o111


def test_free_port_is_free() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


async def test_embedded_broker_answers_and_stops() -> None:
    broker = EmbeddedBroker().start()
    try:
        bootstrap = broker.bootstrap_servers
        assert bootstrap == f"127.0.0.1:{broker.port}"
        await ensure_topics(bootstrap, {"broker-smoke": 1})
        await ensure_topics(bootstrap, {"broker-smoke": 1})  # idempotent: existing topics are left alone
        producer = new_producer(bootstrap, client_id="broker-test")
        await producer.start()
        try:
            sent = await producer.send_and_wait(
                "broker-smoke", value=b'{"hello":"world"}', key=b"k1", headers=[("ce_id", b"1")]
            )
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tp = TopicPartition("broker-smoke", sent.partition)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            record = await consumer.getone()
        finally:
            await consumer.stop()
        assert (record.key, record.value, list(record.headers)) == (b"k1", b'{"hello":"world"}', [("ce_id", b"1")])
    finally:
        broker.stop()
    assert broker._process is None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        assert sock.connect_ex(("127.0.0.1", broker.port)) != 0  # nothing listens any more
    broker.stop()  # stopping twice is harmless


def test_context_manager_stops_the_process() -> None:
    with EmbeddedBroker() as broker:
        process = broker._process
        assert process is not None and process.poll() is None
        with socket.create_connection(("127.0.0.1", broker.port), timeout=2):
            pass
    assert process.poll() is not None
