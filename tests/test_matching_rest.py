"""The matching engine's REST API over a real socket: uvicorn on 127.0.0.1:0 in the test's loop, the
real engine behind it, httpx as the client."""

from __future__ import annotations

import logging
import sqlite3
import stat
from decimal import Decimal

import httpx
import pytest

from engines.config import DeskConfig, load_config
from engines.matching.apitoken import TOKEN_FILE
from engines.matching.rest import openapi_document
from engines.orders import OrderRejected, OrderRequest, Side
from engines.runtime import Desk

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BUILDERS = ["engines.matching.service:build", "engines.matching.api:build"]


def make_desk(tmp_path, token: str | None = TOKEN, **matching) -> Desk:
    m = {"journal": True, "rest": {"port": 0}, "ws": {"port": 0}, **matching}
    if token is not None:
        m["api_token"] = token
    cfg = DeskConfig(desk={"name": "t", "data_dir": str(tmp_path)}, matching=m)
    return Desk(cfg, data_dir=tmp_path / "desk").build(BUILDERS)


@pytest.fixture
async def desk(tmp_path):
    d = make_desk(tmp_path)
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
async def client(desk):
    rest = desk.services["matching-rest"]
    async with httpx.AsyncClient(base_url=rest.url, timeout=5.0) as c:
        yield c


def order(**kw):
    body = {"symbol": "BTC-USD", "side": "buy", "price": "65000", "qty": "0.01", "owner": "alice"}
    body.update(kw)
    return body


def field_of(resp: httpx.Response) -> list[str]:
    return [d["field"] for d in resp.json()["detail"]]


async def test_bound_to_loopback_on_an_ephemeral_port(desk):
    rest = desk.services["matching-rest"]
    assert rest.port > 0
    assert rest.url == f"http://127.0.0.1:{rest.port}"
    assert desk.engine("matching-rest") is rest


async def test_submit_query_cancel(client, desk):
    r = await client.post("/v1/orders", json=order(client_id="a1"), headers=AUTH)
    assert r.status_code == 201, r.text
    ack = r.json()
    oid = ack["order_id"]
    assert ack == {
        "symbol": "BTC-USD", "order_id": oid, "client_id": "a1", "owner": "alice", "status": "new",
        "reason": "", "source": None, "filled_qty": "0", "leaves_qty": "0.01",
    }
    r = await client.get(f"/v1/orders/BTC-USD/{oid}")
    assert r.status_code == 200
    info = r.json()
    assert (info["order_id"], info["status"], info["side"], info["price"]) == (oid, "new", "buy", "65000")
    assert (info["filled_qty"], info["leaves_qty"], info["owner"], info["client_id"]) == ("0", "0.01", "alice", "a1")
    assert (info["type"], info["tif"], info["qty"]) == ("limit", "gtc", "0.01")
    assert info["lifecycle"] == [{"status": "new", "reason": ""}]

    r = await client.get("/v1/orders/BTC-USD/by-client/a1", params={"owner": "alice"})
    assert r.status_code == 200 and r.json()["order_id"] == oid

    r = await client.delete(f"/v1/orders/BTC-USD/{oid}", params={"owner": "alice"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["leaves_qty"], r.json()["filled_qty"]) == ("canceled", "0", "0")
    assert r.json()["lifecycle"] == [{"status": "new", "reason": ""}, {"status": "canceled", "reason": "rest cancel"}]
    assert desk.services["matching"].open_orders(owner="alice") == []

    r = await client.delete(f"/v1/orders/BTC-USD/{oid}", params={"owner": "alice"}, headers=AUTH)
    assert r.status_code == 409
    assert r.json()["detail"][0]["field"] == "order_id"
    r = await client.get("/v1/orders/BTC-USD/999999")
    assert r.status_code == 404 and field_of(r) == ["order_id"]


async def test_cancel_by_client_id(client):
    r = await client.post("/v1/orders", json=order(client_id="c-7", side="sell", price="66000"), headers=AUTH)
    assert r.status_code == 201
    r = await client.delete("/v1/orders/BTC-USD/by-client/c-7", params={"owner": "alice"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    r = await client.delete("/v1/orders/BTC-USD/by-client/c-7", params={"owner": "bob"}, headers=AUTH)
    assert r.status_code == 404 and field_of(r) == ["client_id"]


async def test_trade_depth_trades_stats(client, desk):
    assert (await client.post("/v1/orders", json=order(side="sell", price="65000.5", qty="0.03", owner="mm"),
                              headers=AUTH)).status_code == 201
    assert (await client.post("/v1/orders", json=order(side="sell", price="65001", qty="0.02", owner="mm"),
                              headers=AUTH)).status_code == 201
    assert (await client.post("/v1/orders", json=order(side="buy", price="64999.5", qty="0.05", owner="mm"),
                              headers=AUTH)).status_code == 201
    r = await client.post("/v1/orders", json=order(side="buy", price="65000.5", qty="0.01", owner="taker"),
                          headers=AUTH)
    assert r.status_code == 201
    assert (r.json()["status"], r.json()["filled_qty"], r.json()["leaves_qty"]) == ("filled", "0.01", "0")

    r = await client.get("/v1/depth/BTC-USD", params={"levels": 5})
    assert r.json() == {
        "symbol": "BTC-USD",
        "bids": [["64999.5", "0.05"]],
        "asks": [["65000.5", "0.02"], ["65001", "0.02"]],
    }
    r = await client.get("/v1/trades/BTC-USD")
    trades = r.json()["trades"]
    assert [(t["price"], t["qty"], t["aggressor"]) for t in trades] == [("65000.5", "0.01", "buy")]

    r = await client.get("/v1/stats/BTC-USD")
    assert r.status_code == 200
    stats = r.json()
    assert {k: v for k, v in stats.items() if k != "orders_per_s"} == {
        "symbol": "BTC-USD", "trade_count": 1, "volume": "0.01", "notional": "650.005", "orders": 4,
        "open_orders": 3, "last_price": "65000.5", "bid_px": "64999.5", "bid_qty": "0.05", "ask_px": "65000.5",
        "ask_qty": "0.02",
    }
    r = await client.get("/v1/stats")
    assert set(r.json()["symbols"]) == set(desk.services["matching"].symbols)

    r = await client.get("/v1/orders", params={"owner": "mm"})
    got = sorted((o["side"], o["price"], o["leaves_qty"]) for o in r.json()["orders"])
    assert got == [("buy", "64999.5", "0.05"), ("sell", "65000.5", "0.02"), ("sell", "65001", "0.02")]
    r = await client.get("/v1/orders", params={"owner": "taker"})
    assert r.json() == {"orders": []}


async def test_market_and_ioc(client):
    r = await client.post("/v1/orders", json=order(type="market", price=None, qty="0.01"), headers=AUTH)
    assert r.status_code == 201
    assert (r.json()["status"], r.json()["reason"], r.json()["filled_qty"]) == (
        "expired", "market: unfilled quantity expired (no more liquidity)", "0",
    )
    r = await client.post("/v1/orders", json=order(tif="fok", qty="0.01"), headers=AUTH)
    assert r.status_code == 201
    assert (r.json()["status"], r.json()["reason"]) == ("expired", "FOK: not fully fillable")
    r = await client.post("/v1/orders", json=order(type="market", price="65000"), headers=AUTH)
    assert r.status_code == 422 and field_of(r) == ["price"]


async def test_replace(client, desk):
    r = await client.post("/v1/orders", json=order(client_id="r1", qty="0.05"), headers=AUTH)
    oid = r.json()["order_id"]
    r = await client.put(f"/v1/orders/BTC-USD/{oid}", json={"owner": "alice", "new_client_id": "r2", "qty": "0.02"},
                         headers=AUTH)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["leaves_qty"], r.json()["client_id"]) == ("new", "0.02", "r2")
    r = await client.put("/v1/orders/BTC-USD/by-client/r2",
                         json={"owner": "alice", "new_client_id": "r3", "price": "64000", "qty": "0.02"}, headers=AUTH)
    assert r.status_code == 200, r.text
    (o,) = desk.services["matching"].open_orders(owner="alice")
    assert (o.client_id, o.price, o.qty) == ("r3", 128000, 20)
    r = await client.put(f"/v1/orders/BTC-USD/{o.order_id}", json={"owner": "alice", "qty": "0.0205"}, headers=AUTH)
    assert r.status_code == 422 and field_of(r) == ["qty"] and r.json()["error"] == "off_grid"
    await client.delete(f"/v1/orders/BTC-USD/{o.order_id}", params={"owner": "alice"}, headers=AUTH)
    r = await client.put(f"/v1/orders/BTC-USD/{o.order_id}", json={"owner": "alice", "qty": "0.01"}, headers=AUTH)
    assert r.status_code == 409 and r.json()["error"] == "not_open"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"side": "hold"}, "side"),
        ({"qty": "abc"}, "qty"),
        ({"qty": "-1"}, "qty"),
        ({"price": 65000.5}, "price"),  # a JSON number: prices are decimal strings
        ({"owner": "no spaces allowed"}, "owner"),
        ({"tif": "day"}, "tif"),
        ({"colour": "red"}, "colour"),
        ({"price": None}, "price"),  # a limit order needs a price
        ({"symbol": "DOGE-USD"}, "symbol"),
        ({"qty": "0"}, "qty"),
    ],
)
async def test_bad_input_names_the_field(client, body, field):
    r = await client.post("/v1/orders", json=order(**body), headers=AUTH)
    assert r.status_code == 422, r.text
    assert field_of(r) == [field]


async def test_missing_field_and_bad_json(client):
    body = order()
    del body["qty"]
    r = await client.post("/v1/orders", json=body, headers=AUTH)
    assert r.status_code == 422 and field_of(r) == ["qty"]
    assert r.json()["detail"][0]["message"] == "Field required"
    r = await client.post("/v1/orders", content=b"{not json", headers=AUTH)
    assert r.status_code == 422 and field_of(r) == ["body"]
    r = await client.post("/v1/orders", content=b"{" + b" " * 20_000 + b"}", headers=AUTH)
    assert r.status_code == 413 and field_of(r) == ["body"]
    r = await client.get("/v1/depth/BTC-USD", params={"levels": "0"})
    assert r.status_code == 422 and field_of(r) == ["levels"]
    r = await client.get("/v1/depth/NOPE")
    assert r.status_code == 404 and field_of(r) == ["symbol"]
    r = await client.get("/v1/orders/BTC-USD/by-client/x")
    assert r.status_code == 422 and field_of(r) == ["owner"]


async def test_off_grid_price_and_qty(client, desk):
    r = await client.post("/v1/orders", json=order(price="65000.3"), headers=AUTH)
    assert r.status_code == 422
    assert r.json() == {
        "error": "off_grid",
        "detail": [{"field": "price", "message": "BTC-USD: price 65000.3 is not a multiple of tick size 0.5"}],
    }
    r = await client.post("/v1/orders", json=order(qty="0.0015"), headers=AUTH)
    assert r.status_code == 422 and r.json()["error"] == "off_grid" and field_of(r) == ["qty"]
    assert desk.services["matching"].open_orders() == []


async def test_order_entry_needs_the_token(client, desk):
    r = await client.post("/v1/orders", json=order())
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert field_of(r) == ["authorization"]
    r = await client.post("/v1/orders", json=order(), headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["detail"][0]["message"] == "invalid bearer token"
    r = await client.post("/v1/orders", json=order(), headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    r = await client.delete("/v1/orders/BTC-USD/1", params={"owner": "alice"})
    assert r.status_code == 401
    r = await client.put("/v1/orders/BTC-USD/1", json={"owner": "alice", "qty": "1"})
    assert r.status_code == 401
    assert desk.services["matching"].open_orders() == []
    # reads are open
    assert (await client.get("/v1/depth/BTC-USD")).status_code == 200
    assert (await client.get("/v1/orders", params={"owner": "alice"})).status_code == 200


async def test_risk_gate_refusal_is_403_and_published(client, desk):
    class Halted:
        def check(self, order: OrderRequest) -> str | None:
            return "desk halted" if order.side is Side.BUY else None

    desk.router.gate = Halted()
    seen: list[OrderRejected] = []
    desk.bus.subscribe(OrderRejected, seen.append)
    r = await client.post("/v1/orders", json=order(client_id="g1"), headers=AUTH)
    assert r.status_code == 403
    assert (r.json()["status"], r.json()["source"], r.json()["reason"]) == ("rejected", "risk", "desk halted")
    assert [(e.client_id, e.source, e.reason) for e in seen] == [("g1", "risk", "desk halted")]
    assert desk.services["matching"].open_orders() == []
    r = await client.post("/v1/orders", json=order(side="sell", client_id="g2"), headers=AUTH)
    assert r.status_code == 201


async def test_replace_asks_the_gate_only_when_adding_risk(client, desk):
    r = await client.post("/v1/orders", json=order(qty="0.05"), headers=AUTH)
    oid = r.json()["order_id"]

    class Halted:
        def check(self, order: OrderRequest) -> str | None:
            return "desk halted"

    desk.router.gate = Halted()
    r = await client.put(f"/v1/orders/BTC-USD/{oid}", json={"owner": "alice", "qty": "0.06"}, headers=AUTH)
    assert r.status_code == 403 and r.json()["detail"] == [{"field": "order", "message": "desk halted"}]
    r = await client.put(f"/v1/orders/BTC-USD/{oid}", json={"owner": "alice", "qty": "0.05", "price": "64000"},
                         headers=AUTH)
    assert r.status_code == 403
    r = await client.put(f"/v1/orders/BTC-USD/{oid}", json={"owner": "alice", "qty": "0.02"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["leaves_qty"] == "0.02"  # taking risk off always passes
    (o,) = desk.services["matching"].open_orders(owner="alice")
    assert (o.price, o.qty) == (130_000, 20)


async def test_venue_rejection_is_400(client):
    await client.post("/v1/orders", json=order(side="sell", price="65000"), headers=AUTH)
    r = await client.post("/v1/orders", json=order(post_only=True, price="65000"), headers=AUTH)
    assert r.status_code == 400
    body = r.json()
    assert (body["status"], body["source"], body["reason"]) == ("rejected", "venue", "post-only order would cross")
    assert body["order_id"] is None


async def test_health(client, desk):
    r = await client.get("/v1/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["symbols"] == list(desk.services["matching"].symbols)


async def test_openapi_document(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc == openapi_document()
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) == {
        "/v1/orders",
        "/v1/orders/{symbol}/{order_id}",
        "/v1/orders/{symbol}/by-client/{client_id}",
        "/v1/depth/{symbol}",
        "/v1/trades/{symbol}",
        "/v1/stats",
        "/v1/stats/{symbol}",
        "/v1/health",
    }
    post = doc["paths"]["/v1/orders"]["post"]
    assert post["security"] == [{"bearer": []}]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/NewOrder"}
    new_order = doc["components"]["schemas"]["NewOrder"]
    assert set(new_order["required"]) == {"symbol", "side", "qty", "owner"}
    assert new_order["additionalProperties"] is False
    assert doc["paths"]["/v1/orders"]["get"].get("security") is None
    params = {p["name"]: p for p in doc["paths"]["/v1/depth/{symbol}"]["get"]["parameters"]}
    assert params["levels"]["in"] == "query" and params["levels"]["schema"]["minimum"] == 1
    assert params["symbol"]["in"] == "path" and params["symbol"]["required"] is True

    # every $ref resolves inside the document
    def refs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$ref":
                    yield v
                else:
                    yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    names = set(doc["components"]["schemas"])
    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in names, ref


async def test_ack_means_journaled_and_survives_a_restart(tmp_path):
    d = make_desk(tmp_path)
    await d.start()
    try:
        async with httpx.AsyncClient(base_url=d.services["matching-rest"].url) as c:
            r = await c.post("/v1/orders", json=order(client_id="dur-1", price="64000"), headers=AUTH)
            assert r.status_code == 201
            oid = r.json()["order_id"]
            # The 201 came after the engine's flush: the row is committed, visible to another reader now.
            with sqlite3.connect(d.data_dir / "matching.sqlite") as db:
                row = db.execute("SELECT status, leaves, owner, client_id FROM orders WHERE order_id = ?", (oid,))
                assert row.fetchone() == ("new", 10, "alice", "dur-1")
    finally:
        await d.stop()
    d2 = make_desk(tmp_path)
    await d2.start()
    try:
        async with httpx.AsyncClient(base_url=d2.services["matching-rest"].url) as c:
            r = await c.get("/v1/orders/BTC-USD/by-client/dur-1", params={"owner": "alice"})
            assert r.status_code == 200
            assert (r.json()["order_id"], r.json()["status"], r.json()["price"]) == (oid, "new", "64000")
    finally:
        await d2.stop()


async def test_generated_token_file(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    d = make_desk(tmp_path, token=None)
    await d.start()
    try:
        path = d.data_dir / TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert len(token) >= 32
        assert str(path) in caplog.text and token not in caplog.text
        async with httpx.AsyncClient(base_url=d.services["matching-rest"].url) as c:
            r = await c.post("/v1/orders", json=order(), headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 201
            r = await c.post("/v1/orders", json=order(), headers=AUTH)
            assert r.status_code == 401
    finally:
        await d.stop()


@pytest.mark.parametrize("source", ["env", "secrets_file"])
async def test_token_from_env_or_secrets_file(tmp_path, monkeypatch, source):
    secret = f"{source}-token-0123456789"
    monkeypatch.setenv("OPDESK_DESK__DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPDESK_MATCHING__REST__PORT", "0")
    monkeypatch.setenv("OPDESK_MATCHING__WS__ENABLED", "false")
    secrets = None
    if source == "env":
        monkeypatch.setenv("OPDESK_MATCHING__API_TOKEN", secret)
    else:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(f'[matching]\napi_token = "{secret}"\n')
    cfg = load_config(secrets=secrets)
    assert secret not in repr(cfg)
    d = Desk(cfg, data_dir=tmp_path / "desk").build(BUILDERS)
    await d.start()
    try:
        assert not (d.data_dir / TOKEN_FILE).exists()  # a configured token is never written out
        async with httpx.AsyncClient(base_url=d.services["matching-rest"].url) as c:
            r = await c.post("/v1/orders", json=order(), headers={"Authorization": f"Bearer {secret}"})
            assert r.status_code == 201
    finally:
        await d.stop()


async def test_disabled_rest_is_not_built(tmp_path):
    d = make_desk(tmp_path, rest={"enabled": False}, ws={"enabled": False})
    assert "matching-rest" not in d.services and "matching-ws" not in d.services
    assert [e.name for e in d.engines] == ["matching"]


def test_decimal_strings_only():
    # The model keeps prices as strings so no float ever touches a price.
    from engines.matching.rest import NewOrder

    o = NewOrder.model_validate(order(price="65000.50"))
    assert o.price == "65000.50" and Decimal(o.price) == Decimal("65000.5")
