// zero-io TLS server for benchmarks/tls.mjs: mode 'echo' echoes, mode 'bulk' streams 16 KiB
// writes to every connection as fast as the write queue takes them.
import { readFileSync } from 'node:fs';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';

const [port, dir, mode] = [Number(process.argv[2]), process.argv[3], process.argv[4] ?? 'echo'];
const io = new Io({ maxConnections: 4096, poolSlotCount: 16384, maxWriteQueueBytes: 1 << 20 });
io.tcpListenWith({ host: '127.0.0.1', port, backlog: 4096, tls: { cert: readFileSync(`${dir}/cert.pem`), key: readFileSync(`${dir}/key.pem`) } });
const chunk = Buffer.alloc(16384, 7);
io.runSync((ev, io) => {
  if (mode === 'echo' && ev.type === 'StreamFrame') io.streamWrite(ev.conn, io.poolBytes, ev.offset, ev.length);
  else if (mode === 'bulk' && (ev.type === 'Connected' || ev.type === 'Writable')) {
    while (io.streamWrite(ev.conn, chunk) === chunk.length);
  }
});
process.stderr.write('ready\n');
