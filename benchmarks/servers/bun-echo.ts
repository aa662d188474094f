// Bun TCP echo server. Usage: bun bun-echo.ts PORT
// Prints "listening <port>" on stdout when ready.
// socket.write() may accept fewer bytes than given; the rest is kept (copied,
// since the data buffer is only valid during the callback) and flushed, in
// order, from drain().

type State = { pending: Uint8Array | null };

const port = Number(process.argv[2] ?? 0);

function flush(s: { write(d: Uint8Array): number }, st: State): void {
  while (st.pending) {
    const n = s.write(st.pending);
    if (n <= 0) return;
    st.pending = n < st.pending.length ? st.pending.subarray(n) : null;
  }
}

const server = Bun.listen<State>({
  hostname: '127.0.0.1',
  port,
  socket: {
    open(s) {
      s.setNoDelay?.(true);
      s.data = { pending: null };
    },
    data(s, d) {
      const st = s.data;
      if (st.pending) {
        // Keep order: append behind what is still waiting for drain.
        const merged = new Uint8Array(st.pending.length + d.length);
        merged.set(st.pending, 0);
        merged.set(d, st.pending.length);
        st.pending = merged;
        flush(s, st);
        return;
      }
      const n = s.write(d);
      if (n < d.length) st.pending = new Uint8Array(d.subarray(Math.max(n, 0))); // copy: d is borrowed
    },
    drain(s) {
      flush(s, s.data);
    },
    error(s) {
      s.end();
    },
  },
});

console.log(`listening ${server.port}`);
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
