#!/usr/bin/env python3
"""QUIC echo server on aioquic: a real peer for @zero-io/quic's client tests.

Every client-initiated bidirectional stream gets its bytes echoed back on the same stream, and a
FIN when the peer's FIN arrives. Every DATAGRAM frame is echoed as a DATAGRAM frame
(max_datagram_frame_size=65536). Session tickets are kept in memory (single use), so a client can
resume and send 0-RTT data. Prints "LISTENING <port>" on stdout once bound (--port 0 picks a free
port) and runs until SIGTERM/SIGINT.

Run with the venv's python (see README.md): standard library + aioquic only.
"""
import argparse
import asyncio
import logging
import signal
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.tls import SessionTicket


class EchoProtocol(QuicConnectionProtocol):
    def quic_event_received(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            # Bidirectional streams only (bit 0x2 clear); a unidirectional stream cannot echo.
            if event.stream_id & 0x2 == 0:
                if event.data or event.end_stream:
                    self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
                    self.transmit()
        elif isinstance(event, events.DatagramFrameReceived):
            self._quic.send_datagram_frame(event.data)
            self.transmit()
        elif isinstance(event, events.StreamReset):
            # Peer abandoned its send side: abandon ours too (nothing more will be echoed).
            if event.stream_id & 0x2 == 0:
                try:
                    self._quic.reset_stream(event.stream_id, event.error_code)
                    self.transmit()
                except Exception:  # stream already finished
                    pass
        elif isinstance(event, events.HandshakeCompleted):
            logging.info(
                "handshake alpn=%s resumed=%s early_data=%s",
                event.alpn_protocol,
                event.session_resumed,
                event.early_data_accepted,
            )
        elif isinstance(event, events.ConnectionTerminated):
            logging.info("closed error_code=%s reason=%r", event.error_code, event.reason_phrase)


class TicketStore:
    """Single-use in-memory tickets (a ticket used for 0-RTT must not be replayed)."""

    def __init__(self) -> None:
        self.tickets: dict[bytes, SessionTicket] = {}

    def add(self, ticket: SessionTicket) -> None:
        self.tickets[ticket.ticket] = ticket

    def pop(self, label: bytes) -> SessionTicket | None:
        return self.tickets.pop(label, None)


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="UDP port; 0 picks a free one")
    p.add_argument("--cert", required=True, help="certificate PEM (chain)")
    p.add_argument("--key", required=True, help="private key PEM")
    p.add_argument("--alpn", action="append", help="ALPN to accept (repeatable); default zero-echo")
    p.add_argument("--retry", action="store_true", help="send a Retry (address validation) first")
    p.add_argument("--idle-timeout", type=float, default=60.0)
    p.add_argument("--secrets-log", help="append TLS secrets (SSLKEYLOGFILE format) here")
    p.add_argument("--verbose", "-v", action="store_true", help="log to stderr")
    args = p.parse_args()

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=args.alpn or ["zero-echo"],
        max_datagram_frame_size=65536,
        idle_timeout=args.idle_timeout,
    )
    config.load_cert_chain(args.cert, args.key)
    if args.secrets_log:
        config.secrets_log_file = open(args.secrets_log, "a", buffering=1)

    tickets = TicketStore()
    server = await serve(
        args.host,
        args.port,
        configuration=config,
        create_protocol=EchoProtocol,
        session_ticket_fetcher=tickets.pop,
        session_ticket_handler=tickets.add,
        retry=args.retry,
    )
    port = server._transport.get_extra_info("sockname")[1]
    print(f"LISTENING {port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
