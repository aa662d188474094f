#!/usr/bin/env python3
"""QUIC echo client on aioquic: a real peer for @zero-io/quic's server tests.

Opens --streams N client bidirectional streams at once, sends --size deterministic bytes on each
with FIN, reads the echo to the peer's FIN and checks it byte-exact (length + sha256). Then sends
--datagrams K DATAGRAM frames and counts the echoed ones. Prints ONE JSON line on stdout:

  {"ok":true,"streams":N,"bytes":...,"datagramsEchoed":...,"alpn":"...","resumed":bool,
   "earlyDataAccepted":bool,"error":null, ...}

"streams" is the number of streams whose echo matched; "bytes" the echoed bytes received on them.
Also: "datagramsSent", "ticketSaved", "retried" (the server sent a Retry), "cipher" (e.g.
CHACHA20_POLY1305_SHA256), "keyPhase" (1-RTT send key phase at the end: 1 after one
--key-update), "elapsedMs". "earlyDataAccepted" is TLS-level: the server accepted the early_data
extension (true on any resumption whose ticket allows 0-RTT, even without --early-data).
Exit code 0 only when ok: every stream matched, at most --datagram-loss datagrams unechoed, and
--expect-resumed / --expect-early-data (when given) held. Anything else, including the overall
--timeout, gives ok:false with the reason in "error" and exit code 1 (2 for bad arguments).

Payloads (so another implementation can reproduce them):
  stream i (0-based, in opening order): SHAKE256(b"zero-io-quic-stream-<i>") first SIZE bytes
  datagram j: b"zero-io-dgram-<j as 6 digits>-" padded with SHAKE256 of that prefix to
              --datagram-size bytes

Standard library + aioquic only; run with the venv's python (see README.md).
"""
import argparse
import asyncio
import hashlib
import json
import logging
import pickle
import socket
import ssl
import sys
import time

from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic import tls
from aioquic.tls import CipherSuite, SessionTicket


def stream_payload(i: int, size: int) -> bytes:
    return hashlib.shake_256(b"zero-io-quic-stream-%d" % i).digest(size) if size else b""


def datagram_payload(j: int, size: int) -> bytes:
    head = b"zero-io-dgram-%06d-" % j
    if size <= len(head):
        return head
    return head + hashlib.shake_256(head).digest(size - len(head))


class StreamState:
    __slots__ = ("index", "expected_len", "expected_digest", "hasher", "received", "done", "error")

    def __init__(self, index: int, payload: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self.index = index
        self.expected_len = len(payload)
        self.expected_digest = hashlib.sha256(payload).digest()
        self.hasher = hashlib.sha256()
        self.received = 0
        self.done: asyncio.Future = loop.create_future()
        self.error: str | None = None


class State:
    """What the run has seen so far (read again for the report after a timeout)."""

    def __init__(self) -> None:
        self.phase = "connect"
        self.streams: dict[int, StreamState] = {}
        self.matched = 0
        self.bytes = 0
        self.dgram_expected: dict[bytes, int] = {}
        self.dgram_echoed: set[int] = set()
        self.dgram_event = asyncio.Event()
        self.alpn: str | None = None
        self.resumed = False
        self.early_accepted = False
        self.handshake: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed_reason: str | None = None
        self.ticket: SessionTicket | None = None
        self.ticket_event = asyncio.Event()
        self.key_phase: int | None = None
        self.reason_at_timeout: str | None = None
        self.retried = False
        self.cipher: str | None = None

    def on_ticket(self, ticket: SessionTicket) -> None:
        self.ticket = ticket
        self.ticket_event.set()


STATE: State | None = None


class EchoClient(QuicConnectionProtocol):
    def quic_event_received(self, event: events.QuicEvent) -> None:
        st = STATE
        if isinstance(event, events.StreamDataReceived):
            s = st.streams.get(event.stream_id)
            if s is None or s.done.done():
                return
            s.hasher.update(event.data)
            s.received += len(event.data)
            if s.received > s.expected_len:
                s.error = f"stream {s.index} (id {event.stream_id}): echo longer than sent ({s.received} > {s.expected_len})"
                s.done.set_result(False)
            elif event.end_stream:
                if s.received != s.expected_len:
                    s.error = f"stream {s.index} (id {event.stream_id}): echo length {s.received} != {s.expected_len}"
                    s.done.set_result(False)
                elif s.hasher.digest() != s.expected_digest:
                    s.error = f"stream {s.index} (id {event.stream_id}): echo sha256 mismatch"
                    s.done.set_result(False)
                else:
                    st.matched += 1
                    st.bytes += s.received
                    s.done.set_result(True)
        elif isinstance(event, events.DatagramFrameReceived):
            j = st.dgram_expected.get(event.data)
            if j is not None:
                st.dgram_echoed.add(j)
                st.dgram_event.set()
        elif isinstance(event, events.StreamReset):
            s = st.streams.get(event.stream_id)
            if s is not None and not s.done.done():
                s.error = f"stream {s.index} (id {event.stream_id}): reset by peer, error code {event.error_code}"
                s.done.set_result(False)
        elif isinstance(event, events.HandshakeCompleted):
            st.alpn = event.alpn_protocol
            st.resumed = bool(event.session_resumed)
            st.early_accepted = bool(event.early_data_accepted)
            if not st.handshake.done():
                st.handshake.set_result(True)
        elif isinstance(event, events.ConnectionTerminated):
            st.closed_reason = (
                f"connection closed: error_code=0x{event.error_code:x}"
                f" frame_type={event.frame_type} reason={event.reason_phrase!r}"
            )
            if not st.handshake.done():
                st.handshake.set_result(False)
            for s in st.streams.values():
                if not s.done.done():
                    s.error = s.error or f"stream {s.index}: {st.closed_reason}"
                    s.done.set_result(False)
            st.dgram_event.set()


def open_streams(client: EchoClient, st: State, n: int, size: int) -> None:
    loop = asyncio.get_running_loop()
    quic = client._quic
    for i in range(n):
        payload = stream_payload(i, size)
        sid = quic.get_next_available_stream_id()
        st.streams[sid] = StreamState(i, payload, loop)
        quic.send_stream_data(sid, payload, end_stream=True)
    client.transmit()


async def run(args: argparse.Namespace, st: State) -> str | None:
    """Returns None on success, else the reason."""
    config = QuicConfiguration(
        is_client=True,
        alpn_protocols=args.alpn or ["zero-echo"],
        max_datagram_frame_size=65536,
        idle_timeout=args.idle_timeout,
    )
    if args.insecure:
        config.verify_mode = ssl.CERT_NONE
    else:
        config.load_verify_locations(cafile=args.ca)
    if args.server_name:
        config.server_name = args.server_name
    if args.chacha20:
        config.cipher_suites = [CipherSuite.CHACHA20_POLY1305_SHA256]
    if args.secrets_log:
        config.secrets_log_file = open(args.secrets_log, "a", buffering=1)
    if args.session_ticket_in:
        try:
            with open(args.session_ticket_in, "rb") as f:
                config.session_ticket = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            return f"cannot read session ticket {args.session_ticket_in}: {e}"

    st.phase = "handshake"
    async with connect(
        args.host,
        args.port,
        configuration=config,
        create_protocol=EchoClient,
        session_ticket_handler=st.on_ticket,
        wait_connected=False,
    ) as client:
        # A 4 MiB receive buffer: a busy machine (the test suite runs beside it) would otherwise
        # drop bursts of datagrams at this socket while Python catches up.
        sock = client._transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            except OSError:
                pass
        try:
            if args.early_data:
                # Queued before the handshake: goes out as 0-RTT when the ticket allows it.
                st.phase = "streams (0-RTT)"
                open_streams(client, st, args.streams, args.size)
            client.transmit()
            handshake_ok = await st.handshake
            st.retried = client._quic._retry_count > 0
            ks = getattr(client._quic.tls, "key_schedule", None)
            st.cipher = ks.cipher_suite.name if ks is not None else None
            if not handshake_ok:
                return st.closed_reason or "handshake failed"
            if args.key_update:
                client.request_key_update()
                client.transmit()
            if not args.early_data:
                st.phase = "streams"
                open_streams(client, st, args.streams, args.size)

            if st.streams:
                await asyncio.gather(*(s.done for s in st.streams.values()))
            bad = [s for s in st.streams.values() if s.done.result() is not True]
            if bad:
                return f"{len(bad)} of {args.streams} streams failed; first: {sorted(bad, key=lambda s: s.index)[0].error}"

            if args.datagrams:
                st.phase = "datagrams"
                if client._quic._remote_max_datagram_frame_size is None:
                    return "peer does not accept DATAGRAM frames (no max_datagram_frame_size transport parameter)"
                payloads = [datagram_payload(j, args.datagram_size) for j in range(args.datagrams)]
                for j, p in enumerate(payloads):
                    st.dgram_expected[p] = j
                for j, p in enumerate(payloads):
                    client._quic.send_datagram_frame(p)
                    if j % 16 == 15:
                        client.transmit()
                        await asyncio.sleep(0.001)
                client.transmit()
                deadline = time.monotonic() + args.datagram_wait
                while len(st.dgram_echoed) < args.datagrams and st.closed_reason is None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    st.dgram_event.clear()
                    try:
                        await asyncio.wait_for(st.dgram_event.wait(), left)
                    except asyncio.TimeoutError:
                        break
                lost = args.datagrams - len(st.dgram_echoed)
                if lost > args.datagram_loss:
                    return f"{lost} of {args.datagrams} datagrams not echoed within {args.datagram_wait}s (allowed {args.datagram_loss})"

            if args.session_ticket_out:
                st.phase = "session ticket"
                if st.ticket is None:
                    try:
                        await asyncio.wait_for(st.ticket_event.wait(), args.ticket_wait)
                    except asyncio.TimeoutError:
                        return f"no session ticket (NewSessionTicket) received within {args.ticket_wait}s"
                with open(args.session_ticket_out, "wb") as f:
                    pickle.dump(st.ticket, f)

            if st.closed_reason is not None:
                return st.closed_reason
            st.key_phase = client._quic._cryptos[tls.Epoch.ONE_RTT].send.key_phase
            st.phase = "close"
        except asyncio.CancelledError:
            # Timed out: what closed the connection before now, not our own close on the way out.
            st.reason_at_timeout = st.closed_reason
            raise
    if args.expect_resumed and not st.resumed:
        return "session was not resumed (--expect-resumed)"
    if args.expect_early_data and not st.early_accepted:
        return "early data was not accepted (--expect-early-data)"
    if args.key_update and st.key_phase != 1:
        return f"key update not in effect at the end (1-RTT key phase {st.key_phase})"
    return None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--alpn", action="append", help="ALPN to offer (repeatable); default zero-echo")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ca", help="CA / self-signed certificate PEM to verify the server with")
    g.add_argument("--insecure", action="store_true", help="do not verify the server certificate")
    p.add_argument("--server-name", help="SNI and name to verify; default --host")
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--size", type=int, default=1024, help="bytes sent on each stream")
    p.add_argument("--datagrams", type=int, default=0)
    p.add_argument("--datagram-size", type=int, default=64, help="bytes per datagram (<= 1100)")
    p.add_argument("--datagram-loss", type=int, default=0, help="how many datagrams may go unechoed")
    p.add_argument("--datagram-wait", type=float, default=3.0, help="seconds to wait for echoes")
    p.add_argument("--session-ticket-out", help="save the server's session ticket here (pickle)")
    p.add_argument("--session-ticket-in", help="resume with the ticket saved by --session-ticket-out")
    p.add_argument("--ticket-wait", type=float, default=3.0, help="seconds to wait for a ticket")
    p.add_argument("--early-data", action="store_true", help="send the streams as 0-RTT (needs --session-ticket-in)")
    p.add_argument("--expect-resumed", action="store_true", help="fail unless the session was resumed")
    p.add_argument("--expect-early-data", action="store_true", help="fail unless 0-RTT was accepted")
    p.add_argument("--chacha20", action="store_true", help="offer TLS_CHACHA20_POLY1305_SHA256 only")
    p.add_argument("--key-update", action="store_true", help="initiate a key update once the handshake is confirmed")
    p.add_argument("--timeout", type=float, default=30.0, help="overall seconds")
    p.add_argument("--idle-timeout", type=float, default=30.0)
    p.add_argument("--secrets-log", help="append TLS secrets (SSLKEYLOGFILE format) here")
    p.add_argument("--verbose", "-v", action="store_true", help="aioquic logs on stderr")
    args = p.parse_args()
    if args.early_data and not args.session_ticket_in:
        p.error("--early-data needs --session-ticket-in")
    if not 0 < args.datagram_size <= 1100:
        p.error("--datagram-size must be 1..1100")

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.CRITICAL,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    async def top() -> tuple[State, str | None]:
        global STATE
        STATE = st = State()
        try:
            err = await asyncio.wait_for(run(args, st), args.timeout)
        except asyncio.TimeoutError:
            err = (
                f"timeout after {args.timeout}s during {st.phase}"
                f" (streams matched {st.matched}/{args.streams},"
                f" datagrams echoed {len(st.dgram_echoed)}/{args.datagrams})"
            )
            if st.reason_at_timeout:
                err += f"; {st.reason_at_timeout}"
            if st.retried and args.early_data:
                err += "; the server sent a Retry: aioquic never resends 0-RTT data sent before it"
        except ConnectionError as e:
            err = st.closed_reason or f"connection error: {e!r}"
        except Exception as e:  # report, never a traceback instead of the JSON line
            err = f"{type(e).__name__}: {e}"
        return st, err

    t0 = time.monotonic()
    st, err = asyncio.run(top())
    result = {
        "ok": err is None,
        "streams": st.matched,
        "bytes": st.bytes,
        "datagramsEchoed": len(st.dgram_echoed),
        "alpn": st.alpn,
        "resumed": st.resumed,
        "earlyDataAccepted": st.early_accepted,
        "error": err,
        "datagramsSent": len(st.dgram_expected),
        "ticketSaved": bool(args.session_ticket_out) and err is None,
        "retried": st.retried,
        "cipher": st.cipher,
        "keyPhase": st.key_phase,
        "elapsedMs": round((time.monotonic() - t0) * 1000),
    }
    print(json.dumps(result, separators=(",", ":")), flush=True)
    return 0 if err is None else 1


if __name__ == "__main__":
    sys.exit(main())
