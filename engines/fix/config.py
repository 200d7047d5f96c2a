from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from engines.configbase import Listen, Section


class TLSConfig(Section):
    """TLS for one connection (initiator) or the listening socket (acceptor). Off unless enabled."""

    enabled: bool = False
    cert: Path | None = None  # our certificate chain (PEM); required for the acceptor
    key: Path | None = None  # its private key (PEM)
    ca: Path | None = None  # CA bundle to verify the peer (default: the system's)
    verify: bool = True  # initiator: verify the acceptor's certificate and host name
    server_hostname: str | None = None  # initiator: name to verify (default: host)


class FixSessionConfig(Section):
    """One FIX session (initiator or acceptor side)."""

    name: str
    role: Literal["initiator", "acceptor"] = "initiator"
    begin_string: Literal["FIX.4.2", "FIX.4.4"] = "FIX.4.4"
    sender_comp_id: str
    target_comp_id: str
    host: str = "127.0.0.1"
    port: int = 0  # initiator: 0 means the desk's own acceptor
    heartbeat_interval: int = 30
    username: str | None = None
    password: SecretStr | None = None
    # Sequence numbers back to 1 (and stored messages dropped): never, on every logon, after a logout
    # exchange, or after any disconnect.
    reset: Literal["never", "logon", "logout", "disconnect"] = "never"
    validate_messages: bool = True  # check application messages against the data dictionary
    dictionary: Path | None = (
        None  # a QuickFIX-format XML dictionary; default: engines/fix/spec/OPDESK-FIX4x.xml
    )
    sending_time_window: float = Field(default=120.0, gt=0)
    reconnect_base: float = Field(default=0.5, gt=0)  # initiator backoff: base * 2**(n-1) seconds ...
    reconnect_max: float = Field(default=30.0, gt=0)  # ... capped here ...
    reconnect_jitter: float = Field(default=0.2, ge=0, lt=1)  # ... times 1 ± jitter
    max_reconnect_attempts: int | None = Field(default=None, ge=1)  # None: retry forever
    tls: TLSConfig = TLSConfig()
    # Initiator: register the session as a desk venue (engines.fix.venue.FixVenue) named `venue_name`
    # (default: the session name), so bots and the operator can route orders over it.
    venue: bool = True
    venue_name: str | None = None
    account: str = ""  # Account (1) on the orders the venue sends
    # Venue: seconds to wait for the counterparty's complete answer to an order status request (AF / H)
    # before its open orders are reported unknown (OrderStatusUnavailable).
    status_timeout: float = Field(default=5.0, gt=0)
    # Acceptor: application messages (ExecutionReports) for a client that is not logged on are stored
    # under the session's next MsgSeqNum and replayed on its ResendRequest after it logs on again
    # (QuickFIX semantics); false: refused, the gateway drops them (the client asks for order status).
    store_offline: bool = True
    # Venue (FIX 4.4): a desk-wide cancel_all (the kill switch's) sends one OrderMassCancelRequest (q)
    # instead of an OrderCancelRequest per order, falling back to those on a reject or no answer.
    # None: on for the desk's own loopback (port = 0), off for external counterparties.
    mass_cancel: bool | None = None
    # The desk's own loopback pair only (an initiator with port = 0 and its acceptor counterpart): the
    # orders on it already passed the desk's risk gate as their bot's own orders, so the gateway's side
    # (owner fix:<SenderCompID>) is not gated or counted again. None: yes for the loopback pair; false
    # on either side of the pair gates twice. True anywhere else is an error: external FIX clients are
    # always gated.
    gated_upstream: bool | None = None


class FixConfig(Section):
    enabled: bool = True
    acceptor: Listen = Listen(port=0)
    acceptor_tls: TLSConfig = TLSConfig()
    sessions: list[FixSessionConfig] = []
    store: Literal["sqlite", "memory"] = "sqlite"  # sqlite: data_dir/fix/fix.sqlite (survives restarts)
    # The gateway routes acceptor sessions' orders to this venue (default: the matching engine's).
    gateway_venue: str | None = None
    # Accept a Logon from any CompID pair on the acceptor (dynamic sessions); off: only configured ones.
    accept_any: bool = False

    @model_validator(mode="after")
    def _unique(self) -> FixConfig:
        names: set[str] = set()
        ids: set[tuple[str, str, str]] = set()
        for i, s in enumerate(self.sessions):
            if s.name in names:
                raise ValueError(f"fix.sessions[{i}].name: session name {s.name!r} is used twice")
            names.add(s.name)
            key = (s.begin_string, s.sender_comp_id, s.target_comp_id)
            if key in ids:
                raise ValueError(
                    f"fix.sessions[{i}]: session {s.begin_string}:{s.sender_comp_id}->"
                    f"{s.target_comp_id} is configured twice"
                )
            ids.add(key)
        loopback = {
            (s.begin_string, s.target_comp_id, s.sender_comp_id)
            for s in self.sessions
            if s.role == "initiator" and s.port == 0
        }
        for i, s in enumerate(self.sessions):
            if not s.gated_upstream:
                continue
            if s.role == "initiator" and s.port != 0:
                raise ValueError(
                    f"fix.sessions[{i}].gated_upstream: only the desk's own loopback (port = 0) is gated "
                    "upstream; a remote venue's risk is its own"
                )
            if s.role == "acceptor" and (s.begin_string, s.sender_comp_id, s.target_comp_id) not in loopback:
                raise ValueError(
                    f"fix.sessions[{i}].gated_upstream: {s.target_comp_id} is not the desk's own loopback "
                    "initiator; external FIX clients are always gated"
                )
        return self

    def upstream_gated_owners(self) -> set[str]:
        """Gateway owners (``fix:<CompID>``) of loopback sessions whose orders the desk gated upstream."""
        acceptors = {(s.begin_string, s.sender_comp_id, s.target_comp_id): s for s in self.sessions
                     if s.role == "acceptor"}  # fmt: skip
        out = set()
        for s in self.sessions:
            if s.role != "initiator" or s.port != 0 or s.gated_upstream is False:
                continue
            counterpart = acceptors.get((s.begin_string, s.target_comp_id, s.sender_comp_id))
            if counterpart is not None and counterpart.gated_upstream is False:
                continue
            out.add(f"fix:{s.sender_comp_id}")
        return out
