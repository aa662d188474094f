// fastify server (default options, no logger). Usage: node fastify-http.mjs PORT [hello|json|jsonasync|upload]
// PORT 0 binds a free port; prints "listening <port>" when ready.
import Fastify from 'fastify';
import { makePayload } from './http-payload.mjs';

const port = Number(process.argv[2] ?? 0);
const mode = process.argv[3] ?? 'hello';
const app = Fastify();
if (mode === 'json') app.get('/', (req, reply) => reply.send(makePayload())); // fastify's JSON serialisation
else if (mode === 'jsonasync') app.get('/', async () => makePayload());
else if (mode === 'upload') {
  // The body as a stream, counted (no buffering): a content-type parser that reads the payload.
  app.addContentTypeParser('application/octet-stream', { bodyLimit: 2 << 20 }, (req, payload, done) => {
    let n = 0;
    payload.on('data', (c) => (n += c.length));
    payload.on('end', () => done(null, n));
    payload.on('error', done);
  });
  app.post('/', async (req, reply) => reply.type('text/plain; charset=utf-8').send(String(req.body)));
}
else app.get('/', (req, reply) => reply.type('text/plain; charset=utf-8').send('Hello, World!'));
try {
  await app.listen({ host: '127.0.0.1', port, backlog: 4096 });
} catch (err) {
  console.error(`fastify-http: ${err.message}`);
  process.exit(1);
}
console.log(`listening ${app.server.address().port}`);
process.once('SIGTERM', () => process.exit(0));
process.once('SIGINT', () => process.exit(0));
