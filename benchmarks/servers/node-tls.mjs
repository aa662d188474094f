// node:tls server for benchmarks/tls.mjs (same modes as zero-io-tls.mjs).
import { readFileSync } from 'node:fs';
import tls from 'node:tls';

const [port, dir, mode] = [Number(process.argv[2]), process.argv[3], process.argv[4] ?? 'echo'];
const chunk = Buffer.alloc(16384, 7);
const server = tls.createServer({ cert: readFileSync(`${dir}/cert.pem`), key: readFileSync(`${dir}/key.pem`) }, (s) => {
  s.setNoDelay(true);
  s.on('error', () => {});
  if (mode === 'echo') s.on('data', (d) => s.write(d));
  else {
    const go = () => { while (s.write(chunk)); };
    s.on('drain', go);
    go();
  }
});
server.listen(port, '127.0.0.1', 4096, () => process.stderr.write('ready\n'));
