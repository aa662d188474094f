#!/usr/bin/env python3
"""HTTP/3 download server on aioquic: another QUIC stack for benchmarks/quic.mjs.

`GET /<N>` is answered with status 200 and N bytes (content-length N); any other path gets 404.
The body goes out in 1 MiB DATA frames, topped up whenever less than 2 MiB of the stream is
waiting to be sent or acknowledged (aioquic's send_data only buffers: the whole body at once would
be a copy of it in memory), so aioquic's flow control and congestion control set the pace. Prints
"LISTENING <port>" on stdout once bound (--port 0 picks a free port) and runs until SIGTERM/SIGINT.

Run with the venv's python (see README.md): standard library + aioquic only.
"""
import argparse
import asyncio
import signal

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated

CHUNK = b"\x09" * (1 << 20)
BUFFERED = 2 << 20  # bytes a stream may hold unacknowledged before more is written


class DownloadProtocol(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._h3: H3Connection | None = None
        self._left: dict[int, int] = {}  # stream id -> body bytes not yet handed to aioquic

    def quic_event_received(self, event) -> None:
        if isinstance(event, ProtocolNegotiated):
            self._h3 = H3Connection(self._quic)
        if self._h3 is None:
            return
        for ev in self._h3.handle_event(event):
            if isinstance(ev, HeadersReceived):
                path = dict(ev.headers).get(b":path", b"")
                if path[:1] == b"/" and path[1:].isdigit():
                    n = int(path[1:])
                    self._h3.send_headers(ev.stream_id, [(b":status", b"200"), (b"content-length", str(n).encode())], end_stream=n == 0)
                    if n:
                        self._left[ev.stream_id] = n
                else:
                    self._h3.send_headers(ev.stream_id, [(b":status", b"404")], end_stream=True)

    def transmit(self) -> None:
        # Called after every datagram received (ACKs free the buffer) and every timer: top up.
        for sid, left in list(self._left.items()):
            stream = self._quic._streams.get(sid)
            if stream is None:  # reset or closed under us
                del self._left[sid]
                continue
            sender = stream.sender  # aioquic keeps [start, stop) of it until acknowledged
            while left and sender._buffer_stop - sender._buffer_start < BUFFERED:
                part = min(left, len(CHUNK))
                left -= part
                self._h3.send_data(sid, CHUNK[:part], end_stream=left == 0)
            if left:
                self._left[sid] = left
            else:
                del self._left[sid]
        super().transmit()


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="UDP port; 0 picks a free one")
    p.add_argument("--cert", required=True, help="certificate PEM (chain)")
    p.add_argument("--key", required=True, help="private key PEM")
    p.add_argument("--cc", default="cubic", help="congestion control: reno or cubic")
    p.add_argument("--max-datagram-size", type=int, default=1350, help="largest UDP payload sent (zero-io's default)")
    args = p.parse_args()

    config = QuicConfiguration(
        is_client=False,
        alpn_protocols=H3_ALPN,
        congestion_control_algorithm=args.cc,
        max_datagram_size=args.max_datagram_size,
        max_data=64 << 20,
        max_stream_data=32 << 20,
    )
    config.load_cert_chain(args.cert, args.key)
    server = await serve(args.host, args.port, configuration=config, create_protocol=DownloadProtocol)
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
