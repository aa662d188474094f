// debug.checkBorrows: the flyweight trap (keeping `ev`, or `ev.data`, past its handler call)
// throws BorrowExpired with the explanation instead of silently reading another event.
import { describe, expect, it } from 'vitest';
import { Io, type Event } from '@zero-io/core';
import { onError } from './handler-errors.js';

async function udpBatch(checkBorrows: boolean) {
  const io = new Io({ poolSlotCount: 64, debug: { checkBorrows } });
  const ep = io.udpBind('127.0.0.1:0');
  const { port } = io.localAddress(ep);
  const kept: Event[] = [];
  const views: Uint8Array[] = [];
  const inside: string[] = [];
  let batches = 0;
  const h = io.runSync((ev) => {
    if (ev.type !== 'UdpRecv') return;
    kept.push(ev);                       // the trap: one object, N times (or a guard, with checkBorrows)
    views.push(ev.data);
    inside.push(Buffer.from(ev.data).toString());
    batches++;
  }, { onError });
  const tx = io.udpBind('127.0.0.1:0');
  io.udpSendBytes(tx, { address: '127.0.0.1', port }, Buffer.from('first'));
  io.udpSendBytes(tx, { address: '127.0.0.1', port }, Buffer.from('second'));
  for (let i = 0; i < 400 && inside.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  h.stop();
  io.shutdown();
  return { kept, views, inside, batches };
}

describe('debug.checkBorrows', () => {
  it('inside the handler everything reads as usual', async () => {
    const r = await udpBatch(true);
    expect(r.inside).toEqual(['first', 'second']);
  });

  it('an event kept past its call throws BorrowExpired with the explanation', async () => {
    const r = await udpBatch(true);
    expect(r.kept.length).toBe(2);
    expect(r.kept[0] === r.kept[1]).toBe(false);  // a guard each (not one reused object)
    expect(() => r.kept[0].type).toThrow(expect.objectContaining({
      kind: 'BorrowExpired',
      message: expect.stringMatching(/events are one reused object, valid only during the handler call.*Buffer\.from\(ev\.data\).*debug\.checkBorrows/),
    }));
    // A payload view kept past the batch is emptied, never another datagram's bytes.
    for (const v of r.views) expect(v.length).toBe(0);
  });

  it('without it, the kept events are one object (what the option guards against)', async () => {
    const r = await udpBatch(false);
    expect(r.kept[0] === r.kept[1]).toBe(true);
  });

  it('is validated like every option', () => {
    expect(() => new Io({ debug: { checkBorrows: 'yes' as unknown as boolean } }))
      .toThrow(expect.objectContaining({ kind: 'InvalidConfig' }));
  });
});
