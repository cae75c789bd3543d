"""Operator CLI for dead letters.

    send-dlq list   --group waitlists                # every parked message, one JSON object a line
    send-dlq replay --group waitlists --offset 3     # send one back (partition 0 unless --partition)
    send-dlq replay --group waitlists --all          # send back every one not yet replayed

A replayed message goes to the group's private replay topic (``<group>.replay.v1``),
which only that group reads, with its original headers, so its event id is unchanged
and the inbox still de-duplicates it. ``list`` marks the ones already replayed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from send_shared.consumer import deadletter
from send_shared.events.topics import Topics
from send_shared.kafka import fetch_to_end, new_producer, publish_all
from send_shared.kafka_connection import client_options


async def read_topic(bootstrap_servers: str, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of a topic, from the beginning to its current end (no consumer group)."""
    consumer = AIOKafkaConsumer(**client_options(bootstrap_servers), enable_auto_commit=False, group_id=None)
    try:
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async for batch in fetch_to_end(consumer, tps):
            for messages in batch.values():
                records.extend(messages)
        return records
    finally:
        await consumer.stop()


def describe(record: ConsumerRecord[bytes, bytes], replayed: set[str]) -> dict[str, Any]:
    where = f"{record.topic}:{record.partition}:{record.offset}"
    return {
        "partition": record.partition,
        "offset": record.offset,
        "event_id": deadletter.header_value(record, "ce_id"),
        "event_type": deadletter.header_value(record, "ce_type"),
        "key": (record.key or b"").decode(errors="replace"),
        "original": {
            "topic": deadletter.header_value(record, deadletter.ORIGINAL_TOPIC),
            "partition": deadletter.header_value(record, deadletter.ORIGINAL_PARTITION),
            "offset": deadletter.header_value(record, deadletter.ORIGINAL_OFFSET),
        },
        "error": deadletter.header_value(record, deadletter.ERROR),
        "attempts": deadletter.header_value(record, deadletter.ATTEMPTS),
        "failed_at": deadletter.header_value(record, deadletter.FAILED_AT),
        "replayed": where in replayed,
    }


async def replayed_positions(bootstrap_servers: str, group: str) -> set[str]:
    return {
        value
        for record in await read_topic(bootstrap_servers, Topics.replay(group))
        if (value := deadletter.header_value(record, deadletter.REPLAYED_FROM))
    }


async def list_dead_letters(bootstrap_servers: str, group: str) -> list[dict[str, Any]]:
    replayed = await replayed_positions(bootstrap_servers, group)
    return [describe(r, replayed) for r in await read_topic(bootstrap_servers, Topics.dead_letter(group))]


async def replay(
    bootstrap_servers: str, group: str, *, offset: int | None, partition: int, replay_all: bool
) -> list[dict[str, Any]]:
    replayed = await replayed_positions(bootstrap_servers, group)
    records = await read_topic(bootstrap_servers, Topics.dead_letter(group))
    if replay_all:
        chosen = [r for r in records if f"{r.topic}:{r.partition}:{r.offset}" not in replayed]
    else:
        chosen = [r for r in records if r.offset == offset and r.partition == partition]
        if not chosen:
            raise SystemExit(f"no dead letter at partition {partition} offset {offset}")
    producer = new_producer(bootstrap_servers, client_id=f"{group}-dlq-replay")
    await producer.start()
    try:
        await publish_all(producer, [deadletter.replay_record(r, replay_topic=Topics.replay(group)) for r in chosen])
    finally:
        await producer.stop()
    return [describe(r, replayed) for r in chosen]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="send-dlq", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="show parked messages")
    listing.add_argument("--group", required=True, help="consumer group, e.g. waitlists")
    again = commands.add_parser("replay", help="send parked messages back to the group")
    again.add_argument("--group", required=True)
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--offset", type=int)
    which.add_argument("--all", action="store_true", help="every dead letter not replayed yet")
    again.add_argument("--partition", type=int, default=0)
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the one-line message below says it all
    try:
        if args.command == "list":
            rows = asyncio.run(list_dead_letters(args.bootstrap_servers, args.group))
        else:
            rows = asyncio.run(
                replay(
                    args.bootstrap_servers,
                    args.group,
                    offset=args.offset,
                    partition=args.partition,
                    replay_all=args.all,
                )
            )
    except KafkaError as exc:
        raise SystemExit(
            f"send-dlq: cannot reach the broker at {args.bootstrap_servers} ({exc}); is it running? "
            "Point --bootstrap-servers or KAFKA_BOOTSTRAP_SERVERS at it."
        ) from None
    if not rows:
        done = "no dead letters" if args.command == "list" else "nothing to replay: every dead letter was replayed"
        sys.stderr.write(f"{done} for group {args.group} ({Topics.dead_letter(args.group)})\n")
    for row in rows:
        sys.stdout.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
