"""Who gets a connection, and for how long: the admission rules of every edgetrace listener.

The hub's port and each agent's peer port let anyone connect, so what a connection may cost
before it has proved it holds the token is bounded here, once, for both:

- **a small hello**: the first frame is read with `hello_max` (64 KiB), not the 16 MiB frame
  limit, so an unauthenticated peer cannot make us allocate more than that;
- **a handshake deadline**: TLS handshake and hello must be complete within
  `handshake_timeout` of the accept (a peer sending one byte a second is cut off);
- **an idle deadline** once authenticated (`idle_timeout`): an agent with nothing to ship
  just reconnects when it has;
- **caps**: at most `max_pending` connections that have not authenticated yet, at most
  `max_pending_per_peer` of them from one address — the oldest is dropped to admit a new
  one, so a crowd of idle sockets cannot keep a real agent out — and at most
  `max_connections` in all; beyond that a newcomer is told it is busy and let go.

Every cap is far below a 1,024 file-descriptor limit, which is what keeps a hub serving
under thousands of connection attempts. `Gate` is sans-I/O bookkeeping: the listeners ask it
and close what it tells them to.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HELLO_MAX", "Gate", "Limits", "Ticket"]

#: The most an unauthenticated peer can make us read: its hello frame.
HELLO_MAX = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """What one listener allows (see the module docstring)."""

    max_connections: int = 512
    max_pending: int = 64
    max_pending_per_peer: int = 32
    hello_max: int = HELLO_MAX
    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0


class Ticket:
    """One admitted connection; `close` is how the gate drops it (the listener's abort)."""

    __slots__ = ("authenticated", "close", "peer")

    def __init__(self, peer: str, close: Callable[[], None]) -> None:
        self.peer = peer
        self.close = close
        self.authenticated = False


class Gate:
    """Admission bookkeeping for one listener."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._pending: OrderedDict[Ticket, None] = OrderedDict()
        self._active: set[Ticket] = set()
        self.refused = 0
        self.evicted = 0

    @property
    def open(self) -> int:
        return len(self._pending) + len(self._active)

    def admit(self, peer: str, close: Callable[[], None]) -> Ticket | None:
        """A ticket for a new connection, or None: too many connections, tell it so and let go."""
        limits = self.limits
        if self.open >= limits.max_connections and not self._pending:
            self.refused += 1
            return None
        same = [t for t in self._pending if t.peer == peer]
        if len(same) >= limits.max_pending_per_peer:
            self._evict(same[0])
        elif len(self._pending) >= limits.max_pending or self.open >= limits.max_connections:
            self._evict(next(iter(self._pending)))
        ticket = Ticket(peer, close)
        self._pending[ticket] = None
        return ticket

    def authenticated(self, ticket: Ticket) -> None:
        """The connection proved it holds the token: it no longer counts as pending."""
        if ticket in self._pending:
            del self._pending[ticket]
            ticket.authenticated = True
            self._active.add(ticket)

    def release(self, ticket: Ticket) -> None:
        """The connection ended (for whatever reason)."""
        self._pending.pop(ticket, None)
        self._active.discard(ticket)

    def _evict(self, ticket: Ticket) -> None:
        self._pending.pop(ticket, None)
        self.evicted += 1
        ticket.close()
