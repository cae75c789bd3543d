"""Baseline for the ingest benchmark: a bare FastAPI endpoint inserting the same row into PostgreSQL,
with no validation beyond JSON, no auth, no outbox and no events."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert
from sqlalchemy.ext.asyncio import create_async_engine

metadata = MetaData()
rows = Table(
    "bare_referrals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("child_ref", String(64)),
    Column("service_id", String(64)),
    Column("status", String(20)),
    Column("version", Integer),
    Column("referred_at", DateTime(timezone=True)),
)
engine = create_async_engine(
    os.environ["DATABASE_URL"], pool_size=20, max_overflow=0
)  # as the services' pool (send_shared.db)
app = FastAPI()


@app.on_event("startup")
async def create() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


@app.post("/v1/referrals", status_code=201)
async def create_referral(body: dict[str, Any]) -> dict[str, str]:
    referral_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            insert(rows).values(
                id=referral_id,
                child_ref=body.get("child", {}).get("nhs_number", ""),
                service_id=body.get("service_id"),
                status="submitted",
                version=1,
                referred_at=datetime.now(UTC),
            )
        )
    return {"id": referral_id}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["HTTP_PORT"]), log_config=None, access_log=False)
