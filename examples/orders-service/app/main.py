"""An orders API with its own ``app`` package, no database, no auth, no WebSocket: ``instrument(app)`` only."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from fastapi_lookout import instrument

app = FastAPI(title="Orders")
instrument(app, service="orders", environment="example", version="1.0.0")

ORDERS: dict[int, dict[str, object]] = {}


class OrderIn(BaseModel):
    item: str = Field(min_length=1, max_length=100)
    quantity: int = Field(ge=1, le=1000)


@app.get("/orders")
async def list_orders() -> list[dict[str, object]]:
    return list(ORDERS.values())


@app.post("/orders", status_code=201)
async def place_order(order: OrderIn) -> dict[str, object]:
    order_id = len(ORDERS) + 1
    ORDERS[order_id] = {"id": order_id, "item": order.item, "quantity": order.quantity}
    return ORDERS[order_id]


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, object]:
    if order_id not in ORDERS:
        raise HTTPException(status_code=404, detail="no such order")
    return ORDERS[order_id]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
