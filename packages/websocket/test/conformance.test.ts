// RFC 6455 conformance, by the case families of the Autobahn Testsuite (which runs only on
// Python 2): framing, pings and pongs, reserved bits, opcodes, fragmentation, UTF-8, close
// handling and limits — each a raw client speaking bytes to the server, which must answer with
// the right frames or close with the right code, never crash, hang or lose bytes, while a
// well-behaved connection beside it keeps working.
import { describe, expect, it } from 'vitest';
import '@zero-io/websocket';
import { RawWs, frame, startWs, until, type WsServer } from './helpers.js';

const TEXT = 1, BIN = 2, CLOSE = 8, PING = 9, PONG = 10, CONT = 0;

/** Sends `frames` on a fresh connection and waits for the server's close frame and TCP close. */
async function expectClose(s: WsServer, frames: Buffer[], code: number): Promise<RawWs> {
  const c = await RawWs.open(s.port);
  for (const f of frames) c.send(f);
  await until(() => c.closeFrame() !== null && (c.ended || c.closed), 10_000, `a close frame with ${code}`);
  expect(c.closeFrame()!.code).toBe(code);
  return c;
}

/** Checks that a bystander connection still echoes (the violation damaged nothing else). */
async function bystanderWorks(s: WsServer, c: RawWs): Promise<void> {
  const before = c.frames.length;
  c.send(frame(TEXT, 'still here'));
  await until(() => c.frames.length > before, 10_000, 'the bystander echo');
  expect(c.frames.at(-1)!.payload.toString()).toBe('still here');
}

function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

describe('framing (Autobahn 1.x)', () => {
  it.each([0, 125, 126, 65_535, 65_536, 1 << 20])('a %i-byte binary message is echoed intact', async (n) => {
    const s = startWs({ maxMessageSize: 2 << 20 });
    const c = await RawWs.open(s.port);
    const p = Buffer.alloc(n, 0x2a);
    c.send(frame(BIN, p));
    await until(() => c.frames.length === 1, 10_000, 'the echo');
    expect(c.frames[0].opcode).toBe(BIN);
    expect(c.frames[0].payload.equals(p)).toBe(true);
  });
  it('a message sent one byte per TCP segment is echoed whole', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const f = frame(TEXT, 'byte by byte, across every header field');
    for (const byte of f) {
      c.send(Buffer.from([byte]));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => c.frames.length === 1);
    expect(c.frames[0].payload.toString()).toBe('byte by byte, across every header field');
  });
  it('a length not in its shortest form is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(BIN, Buffer.alloc(10), { lengthBytes: 2 })], 1002);
    await expectClose(s, [frame(BIN, Buffer.alloc(300), { lengthBytes: 8 })], 1002);
  });
  it('an unmasked frame from a client is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(TEXT, 'bare', { mask: false })], 1002);
  });
});

describe('pings and pongs (Autobahn 2.x)', () => {
  it.each([0, 1, 125])('a ping with %i bytes is answered with a pong carrying them', async (n) => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const p = Buffer.alloc(n, 0x70);
    c.send(frame(PING, p));
    await until(() => c.frames.length === 1);
    expect(c.frames[0].opcode).toBe(PONG);
    expect(c.frames[0].payload.equals(p)).toBe(true);
  });
  it('a ping longer than 125 bytes is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(PING, Buffer.alloc(126))], 1002);
  });
  it('a fragmented ping is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(PING, 'half', { fin: false })], 1002);
  });
  it('an unsolicited pong is ignored, and ten pings in a row get ten pongs in order', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    c.send(frame(PONG, 'unasked'));
    for (let i = 0; i < 10; i++) c.send(frame(PING, `p${i}`));
    await until(() => c.frames.length === 10);
    expect(c.frames.map((f) => f.payload.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`));
  });
});

describe('reserved bits (Autobahn 3.x)', () => {
  it.each([1, 2, 3, 4, 5, 6, 7])('RSV bits %i without an extension are a protocol error (1002)', async (rsv) => {
    const s = startWs();
    const bystander = await RawWs.open(s.port);
    await expectClose(s, [frame(TEXT, 'x', { rsv })], 1002);
    await bystanderWorks(s, bystander);
  });
});

describe('opcodes (Autobahn 4.x)', () => {
  it.each([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])('reserved opcode %i is a protocol error (1002)', async (op) => {
    const s = startWs();
    await expectClose(s, [frame(op, op >= 8 ? '' : 'data')], 1002);
  });
});

describe('fragmentation (Autobahn 5.x)', () => {
  it('a message in fragments with pings between them arrives whole, the pongs at once', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    c.send(frame(TEXT, 'frag', { fin: false }));
    c.send(frame(PING, 'mid'));
    c.send(frame(CONT, 'men', { fin: false }));
    c.send(frame(PING, 'mid2'));
    c.send(frame(CONT, 'ted'));
    await until(() => c.frames.length === 3);
    expect(c.frames.map((f) => [f.opcode, f.payload.toString()])).toEqual([[PONG, 'mid'], [PONG, 'mid2'], [TEXT, 'fragmented']]);
  });
  it('64 KiB of one-byte fragments arrive as one message', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const n = 65_536;
    const parts: Buffer[] = [frame(BIN, Buffer.from([0]), { fin: false })];
    for (let i = 1; i < n - 1; i++) parts.push(frame(CONT, Buffer.from([i & 0xff]), { fin: false }));
    parts.push(frame(CONT, Buffer.from([(n - 1) & 0xff])));
    c.send(Buffer.concat(parts));
    await until(() => c.frames.length === 1, 20_000, 'the reassembled message');
    const got = c.frames[0].payload;
    expect(got.length).toBe(n);
    for (let i = 0; i < n; i++) if (got[i] !== (i & 0xff)) throw new Error(`byte ${i} is ${got[i]}`);
    expect(s.seen.messages).toHaveLength(1);
  });
  it('a continuation with no message begun is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(CONT, 'orphan')], 1002);
  });
  it('a new message before the fragmented one ended is a protocol error (1002)', async () => {
    const s = startWs();
    await expectClose(s, [frame(TEXT, 'one', { fin: false }), frame(TEXT, 'two')], 1002);
  });
});

describe('UTF-8 handling (Autobahn 6.x)', () => {
  const valid = ['κόσμε', '€', '𝄞 music', '\u{10FFFF}', 'a\u0000b'];
  it.each(valid)('valid text %j is echoed, also when every fragment cuts a character', async (t) => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const b = Buffer.from(t);
    c.send(frame(TEXT, b));
    const parts: Buffer[] = [];
    for (let i = 0; i < b.length; i++) parts.push(frame(i === 0 ? TEXT : CONT, b.subarray(i, i + 1), { fin: i === b.length - 1 }));
    c.send(Buffer.concat(parts));
    await until(() => c.frames.length === 2);
    expect(c.frames.map((f) => f.payload.toString())).toEqual([t, t]);
  });
  const invalid: [string, number[]][] = [
    ['a lone continuation byte', [0x80]], ['an overlong slash', [0xc0, 0xaf]], ['an overlong 3-byte form', [0xe0, 0x80, 0xaf]],
    ['a UTF-16 surrogate', [0xed, 0xa0, 0x80]], ['a code point past U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['0xFE', [0xfe]], ['0xFF', [0xff]], ['a sequence cut at the message end', [0xe2, 0x82]],
  ];
  it.each(invalid)('%s is invalid payload data (1007)', async (_name, bytes) => {
    const s = startWs();
    await expectClose(s, [frame(TEXT, Buffer.concat([Buffer.from('ok '), Buffer.from(bytes)]))], 1007);
  });
  it('an invalid byte in a later fragment fails as soon as it arrives (1007)', async () => {
    const s = startWs();
    await expectClose(s, [frame(TEXT, 'fine so far', { fin: false }), frame(CONT, Buffer.from([0xff]), { fin: false })], 1007);
  });
});

describe('close handling (Autobahn 7.x)', () => {
  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])('close code %i is echoed and reported', async (code) => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    c.send(frame(CLOSE, closePayload(code, 'bye')));
    await until(() => c.closeFrame() !== null && (c.ended || c.closed));
    expect(c.closeFrame()!.code).toBe(code);
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0]).toMatchObject({ code, origin: 'peer' });
  });
  it.each([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])('close code %i may not be sent: 1002', async (code) => {
    const s = startWs();
    await expectClose(s, [frame(CLOSE, closePayload(code))], 1002);
  });
  it('an empty close is answered with an empty close (reported as 1005)', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    c.send(frame(CLOSE, Buffer.alloc(0)));
    await until(() => c.closeFrame() !== null && (c.ended || c.closed));
    expect(c.closeFrame()!.code).toBe(1005);
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0].code).toBe(1005);
  });
  it('a 1-byte close payload is a protocol error, an invalid UTF-8 reason invalid data', async () => {
    const s = startWs();
    await expectClose(s, [frame(CLOSE, Buffer.from([3]))], 1002);
    await expectClose(s, [frame(CLOSE, Buffer.concat([closePayload(1000), Buffer.from([0xff])]))], 1007);
  });
  it('nothing after the close frame is read (a message after it is not delivered)', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    c.send(Buffer.concat([frame(CLOSE, closePayload(1000)), frame(TEXT, 'after close')]));
    await until(() => c.closed || c.ended);
    expect(s.seen.messages).toHaveLength(0);
  });
});

describe('limits (Autobahn 9.x / hostile input)', () => {
  it('a message over maxMessageSize closes with 1009 before it is read', async () => {
    const s = startWs({ maxMessageSize: 1000 });
    const bystander = await RawWs.open(s.port);
    await expectClose(s, [frame(BIN, Buffer.alloc(1001))], 1009);
    await bystanderWorks(s, bystander);
    expect(s.io.wsStats(s.ep)!.tooBig).toBe(1);
  });
  it('a never-ending fragmented message is cut at maxMessageSize (1009), memory bounded', async () => {
    const s = startWs({ maxMessageSize: 64 * 1024 });
    const c = await RawWs.open(s.port);
    c.send(frame(BIN, Buffer.alloc(1000), { fin: false }));
    let sent = 1000;
    while (!c.closeFrame() && !c.closed && sent < 10 << 20) {
      c.send(frame(CONT, Buffer.alloc(4096), { fin: false }));
      sent += 4096;
      await new Promise((r) => setImmediate(r));
    }
    await until(() => c.closeFrame() !== null);
    expect(c.closeFrame()!.code).toBe(1009);
    expect(s.seen.messages).toHaveLength(0);
  });
  it('a frame header announcing 2^63-1 bytes is refused at once (1009), not waited for', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const h = Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]);
    c.send(h);
    await until(() => c.closeFrame() !== null);
    expect(c.closeFrame()!.code).toBe(1009);
  });
  it('garbage after the handshake closes that connection only (1002)', async () => {
    const s = startWs();
    const bystander = await RawWs.open(s.port);
    const c = await RawWs.open(s.port);
    c.send(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await until(() => c.closeFrame() !== null || c.closed);
    await bystanderWorks(s, bystander);
  });
});
