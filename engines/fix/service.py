"""Desk wiring of the FIX engine: the acceptor with the gateway, and the desk's initiator sessions.

``build(desk)`` makes one engine, ``"fix"`` (also ``desk.services["fix"]``):

* an :class:`~engines.fix.acceptor.Acceptor` on ``[fix] acceptor`` (127.0.0.1, port 0 by default) whose
  sessions run the :class:`~engines.fix.gateway.Gateway` — the ``role = "acceptor"`` sessions of
  ``[[fix.sessions]]`` plus, for every initiator with ``port = 0`` (the desk's own acceptor), its
  counterpart, so the demo desk's loopback session logs on by itself;
* one :class:`~engines.fix.initiator.Initiator` per ``role = "initiator"`` session; with ``venue = true``
  its application is a :class:`~engines.fix.venue.FixVenue` added to the desk's router, so bots can
  trade over FIX.

Sessions store their sequence numbers and sent messages in ``desk.data_dir/fix/fix.sqlite`` and write
their audit logs to ``desk.data_dir/fix/logs``. ``start`` waits (briefly) for loopback sessions to log
on, so the console's FIX panel is live from the first frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engines.fix.acceptor import Acceptor
from engines.fix.application import Application
from engines.fix.config import FixSessionConfig, TLSConfig
from engines.fix.dictionary import Validator, default_dictionary, load_dictionary
from engines.fix.events import SessionState
from engines.fix.gateway import Gateway
from engines.fix.initiator import Initiator
from engines.fix.session import Session, SessionID, SessionSettings
from engines.fix.store import MemoryStore, MessageStore, ResetPolicy, SqliteStore
from engines.fix.venue import FixVenue
from engines.fix.venue_store import VenueOrderStore

if TYPE_CHECKING:
    from engines.runtime import Desk, Engine

log = logging.getLogger(__name__)

#: How long ``start`` waits for loopback initiators to log on before going on without them.
LOOPBACK_LOGON_WAIT = 5.0


def settings_for(sc: FixSessionConfig) -> SessionSettings:
    return SessionSettings(
        heartbeat_interval=sc.heartbeat_interval,
        reset=ResetPolicy(sc.reset),
        validate_messages=sc.validate_messages,
        sending_time_window=sc.sending_time_window,
        username=sc.username,
        password=sc.password,
        max_reconnect_attempts=sc.max_reconnect_attempts,
        reconnect_base=sc.reconnect_base,
        reconnect_max=sc.reconnect_max,
        reconnect_jitter=sc.reconnect_jitter,
        store_offline=sc.store_offline,
    )


def validator_for(sc: FixSessionConfig) -> Validator | None:
    if not sc.validate_messages:
        return None
    dd = load_dictionary(sc.dictionary) if sc.dictionary is not None else default_dictionary(sc.begin_string)
    return Validator(dd)


def ssl_context(tls: TLSConfig, *, server: bool) -> ssl.SSLContext | None:
    if not tls.enabled:
        return None
    if server:
        if tls.cert is None:
            raise ValueError("fix TLS acceptor needs a certificate (acceptor_tls.cert)")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert, tls.key)
        if tls.ca is not None:  # client certificates required when a CA is given
            ctx.load_verify_locations(tls.ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca) if tls.ca else None)
    if tls.cert is not None:
        ctx.load_cert_chain(tls.cert, tls.key)
    if not tls.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class FixService:
    """The desk's FIX engine: acceptor + gateway, initiators (+ venues)."""

    name = "fix"

    def __init__(self, desk: Desk) -> None:
        cfg = desk.config.fix
        self.desk = desk
        self.dir = desk.data_dir / "fix"
        self.store: MessageStore = (
            SqliteStore(self.dir / "fix.sqlite") if cfg.store == "sqlite" else MemoryStore()
        )
        self.log_dir: Path | None = self.dir / "logs"
        self.gateway = Gateway(
            bus=desk.bus,
            router=desk.router,
            instruments=desk.instruments,
            venue=cfg.gateway_venue or desk.config.matching.venue,
            matching=desk.services.get("matching"),
            clock=desk.clock,
            depth_levels=desk.config.matching.depth_levels,
        )
        # The desk's own loopback clients: their orders passed the gate upstream, as their bots' orders.
        risk = desk.services.get("risk")
        if risk is not None and cfg.acceptor.enabled:
            for owner in sorted(cfg.upstream_gated_owners()):
                risk.gate.trust_upstream(owner)
        self.acceptor: Acceptor | None = None
        if cfg.acceptor.enabled:
            self.acceptor = Acceptor(
                host=cfg.acceptor.host,
                port=cfg.acceptor.port,
                ssl_context=ssl_context(cfg.acceptor_tls, server=True),
                session_factory=self._dynamic_session if cfg.accept_any else None,
            )
        self.sessions: dict[str, Session] = {}  # config name -> session
        self.initiators: dict[str, Initiator] = {}
        self.venues: dict[str, FixVenue] = {}
        self._loopback: list[Session] = []
        configured = {(s.begin_string, s.sender_comp_id, s.target_comp_id) for s in cfg.sessions}
        for sc in cfg.sessions:
            sid = SessionID(sc.begin_string, sc.sender_comp_id, sc.target_comp_id)
            if sc.role == "acceptor":
                if self.acceptor is None:
                    raise ValueError(f"fix session {sc.name}: role acceptor needs [fix.acceptor] enabled")
                self.sessions[sc.name] = self._acceptor_session(sid, sc)
                continue
            app: Application
            if sc.venue:
                vname = sc.venue_name or sc.name
                venue = FixVenue(
                    vname, bus=desk.bus, instruments=desk.instruments, clock=desk.clock, account=sc.account,
                    status_timeout=sc.status_timeout,
                    # ClOrdID -> owner, durable: a restarted desk attributes the counterparty's reports
                    store=VenueOrderStore(self.dir / f"venue-{vname}.sqlite") if cfg.store == "sqlite" else None,
                )  # fmt: skip
                # Its orders of before a restart, known (unverified) from build on: engines that start
                # before FIX (the kill switch's latched sweep, grid bots) can see them in known_orders().
                venue.restore()
                venue.mass_cancel = sc.mass_cancel if sc.mass_cancel is not None else sc.port == 0
                self.venues[venue.name] = venue
                desk.router.add_venue(venue)
                app = venue
            else:
                app = Application()
            session = Session(
                sid, settings_for(sc), app, self.store, role="initiator", clock=desk.clock, bus=desk.bus,
                validator=validator_for(sc), log_dir=self.log_dir,
            )  # fmt: skip
            if sc.venue:
                self.venues[sc.venue_name or sc.name].session = session
            self.sessions[sc.name] = session
            tls = ssl_context(sc.tls, server=False)
            self.initiators[sc.name] = Initiator(
                session, sc.host, sc.port, ssl_context=tls, server_hostname=sc.tls.server_hostname or sc.host
            )
            if sc.port == 0:
                # The desk's own acceptor: it needs the counterpart session (unless configured explicitly).
                if self.acceptor is None:
                    raise ValueError(
                        f"fix session {sc.name}: port = 0 means the desk's acceptor, which is disabled"
                    )
                self._loopback.append(session)
                if (sc.begin_string, sc.target_comp_id, sc.sender_comp_id) not in configured:
                    self._acceptor_session(sid.reversed(), sc)

    def _acceptor_session(self, sid: SessionID, sc: FixSessionConfig | None) -> Session:
        assert self.acceptor is not None
        if sc is not None:
            settings, validator = settings_for(sc), validator_for(sc)
        else:
            settings, validator = SessionSettings(), Validator(default_dictionary(sid.begin_string))
        session = Session(
            sid, settings, self.gateway, self.store, role="acceptor", clock=self.desk.clock, bus=self.desk.bus,
            validator=validator, log_dir=self.log_dir,
        )  # fmt: skip
        self.acceptor.add_session(session)
        return session

    def _dynamic_session(self, sid: SessionID) -> Session | None:
        if sid.begin_string not in ("FIX.4.2", "FIX.4.4"):
            return None
        log.info("fix: accepting new session %s", sid)
        return self._acceptor_session(sid, None)

    async def start(self) -> None:
        await self.store.open()
        if self.acceptor is not None:
            await self.acceptor.start()
        for initiator in self.initiators.values():
            if initiator.port == 0 and self.acceptor is not None:
                initiator.port = self.acceptor.port
            await initiator.start()
        if self._loopback:
            waits = [s.wait_state(SessionState.ACTIVE, LOOPBACK_LOGON_WAIT) for s in self._loopback]
            results = await asyncio.gather(*waits, return_exceptions=True)
            for s, r in zip(self._loopback, results):
                if isinstance(r, BaseException):
                    log.warning(
                        "fix: loopback session %s not logged on after %.0fs", s.key, LOOPBACK_LOGON_WAIT
                    )

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.gateway.drain(2.0)  # answers for orders already taken
        for initiator in self.initiators.values():
            with contextlib.suppress(Exception):
                await initiator.stop("desk stopping")
        if self.acceptor is not None:
            with contextlib.suppress(Exception):
                await self.acceptor.stop("desk stopping")
        self.gateway.close()
        for venue in self.venues.values():
            venue.close()
        await self.store.close()

    def session(self, name: str) -> Session:
        """A configured session by its config name."""
        return self.sessions[name]

    def find(self, name: str) -> Session:
        """A session by config name or by key ("FIX.4.4:SENDER->TARGET"); KeyError if none."""
        if name in self.sessions:
            return self.sessions[name]
        for session in self.all_sessions():
            if session.key == name:
                return session
        raise KeyError(name)

    def _initiator_of(self, session: Session) -> Initiator | None:
        return next((i for i in self.initiators.values() if i.session is session), None)

    async def logout(self, name: str, reason: str = "operator logout") -> None:
        """Log a session out. An initiator stays down until :meth:`reconnect`; on an acceptor session
        the counterparty decides when to log on again."""
        session = self.find(name)
        initiator = self._initiator_of(session)
        if initiator is not None:
            await initiator.stop(reason)
        elif session.connected:
            await session.logout(reason)

    async def reconnect(self, name: str) -> None:
        """Drop an initiator session's connection (logging out first if it is up) and connect again."""
        session = self.find(name)
        initiator = self._initiator_of(session)
        if initiator is None:
            raise ValueError(f"{session.key} is an acceptor session: the counterparty reconnects, not us")
        await initiator.stop("operator reconnect")
        await initiator.start()

    def all_sessions(self) -> list[Session]:
        out = list(self.sessions.values())
        if self.acceptor is not None:
            out += [s for s in self.acceptor.sessions.values() if s not in out]
        return out

    def status(self) -> dict[str, Any]:
        return {
            "acceptor": None
            if self.acceptor is None
            else {"host": self.acceptor.host, "port": self.acceptor.port},
            "sessions": {s.key: s.state.value for s in self.all_sessions()},
            "gateway": self.gateway.status(),
            "venues": {name: v.status() for name, v in self.venues.items()},
        }


def build(desk: Desk) -> list[Engine]:
    cfg = desk.config.fix
    if not cfg.enabled:
        return []
    service = FixService(desk)
    desk.services["fix"] = service
    return [service]
