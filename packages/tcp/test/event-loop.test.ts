// The runSync claims (core README / Io.runSync TSDoc): "JS is entered once per batch" and
// "Node's event loop is never blocked". Measured under a busy echo: 32 node:net clients in a
// child process (their CPU time is not ours) echo 4 MiB each through a zero-io server.
// - Batches: io.nextEvent() (how runSync drains a batch, until null) is wrapped to count
//   batches and their events; a microtask marks the end of each JS entry (the driver's
//   MakeCallback drains microtasks when it returns), so JS entries are counted independently.
// - Lag: perf_hooks.monitorEventLoopDelay over the whole run.
import { spawn } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, onError, until } from './helpers.js';

describe('runSync under load', () => {
  it('enters JS once per batch, batches carry many events, and the event loop stays responsive', async () => {
    const io = new Io();
    // runSync drains each batch with io.nextEvent() until it returns null: wrapping it on the
    // instance counts batches (one null each) and their events.
    const batchSizes: number[] = [];
    let current = 0;
    const nextEvent = io.nextEvent.bind(io);
    io.nextEvent = () => {
      const ev = nextEvent();
      if (ev === null) { batchSizes.push(current); current = 0; } else current++;
      return ev;
    };
    // Loop turns: a self-renewing setImmediate counts libuv iterations; batches run in the same
    // turn were run by one wake-up of the driver without letting the loop go on.
    let turn = 0;
    let turning = true;
    const spin = (): void => { turn++; if (turning) setImmediate(spin); };
    setImmediate(spin);
    const perTurn = new Map<number, number>();
    let handlerCalls = 0;
    let entries = 0;
    let inEntry = false;
    let batchesInEntry = 0;
    let entriesWithSeveralBatches = 0;
    let batchesSeen = 0;
    const echo = echoHandler();
    const h = io.runSync((ev, i) => {
      handlerCalls++;
      if (!inEntry) {
        // First event of a JS entry: the entry ends when its microtasks run.
        inEntry = true;
        entries++;
        batchesInEntry = 0;
        batchesSeen = batchSizes.length;
        queueMicrotask(() => { inEntry = false; });
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1);
      }
      // A batch finished inside this entry and another began: two batches in one entry.
      if (batchSizes.length !== batchesSeen) {
        batchesSeen = batchSizes.length;
        if (++batchesInEntry === 1) entriesWithSeveralBatches++;
      }
      echo(ev, i);
    }, { onError });
    const ep = io.tcpListen('127.0.0.1:0');
    const port = io.localAddress(ep).port;

    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const clients = spawn(process.execPath, ['--input-type=module', '-e', `
      import net from 'node:net';
      const PER = 4 << 20, CHUNK = 64 << 10, N = 32;
      const chunk = Buffer.alloc(CHUNK, 7);
      let done = 0;
      for (let i = 0; i < N; i++) {
        const s = net.connect(${port}, '127.0.0.1');
        let sent = 0, got = 0;
        const pump = () => { while (sent < PER) { sent += CHUNK; if (!s.write(chunk)) return; } };
        s.on('connect', pump);
        s.on('drain', pump);
        s.on('data', (d) => { got += d.length; if (got >= PER) { s.destroy(); if (++done === N) process.exit(0); } });
        s.on('error', (e) => { console.error(e); process.exit(1); });
      }
    `], { stdio: ['ignore', 'inherit', 'inherit'] });
    const code = await new Promise<number | null>((r) => clients.on('exit', (c) => r(c)));
    lag.disable();
    turning = false;
    expect(code).toBe(0);
    await until(() => io.poolStats().connections === 0, 5000, 'the clients to be gone');
    await h.shutdown({ timeoutMs: 500 });
    io.shutdown();

    const batches = batchSizes.length;
    const nonEmpty = batchSizes.filter((n) => n > 0);
    const events = batchSizes.reduce((a, n) => a + n, 0);
    // Every event of every batch reached the handler once, and only those.
    expect(handlerCalls).toBe(events);
    // One JS entry per batch: no entry saw two batches, and every batch with events had its
    // own entry. (The driver may run several batches in one libuv wake-up; each is its own
    // entry into JS.)
    expect(entriesWithSeveralBatches).toBe(0);
    expect(entries).toBe(nonEmpty.length);
    // Under load, batches carry more than one event on average.
    expect(events / nonEmpty.length).toBeGreaterThan(1);
    const summary = `${batches} batches (${nonEmpty.length} with events), ${events} events (${(events / nonEmpty.length).toFixed(1)}/batch, max ${Math.max(...batchSizes)}), ` +
      `at most ${Math.max(...perTurn.values())} batches in one loop turn, lag p50 ${(lag.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms`;
    console.log(`event-loop: ${summary}`);
    // The loop was never blocked: p99 of the loop delay far below what a blocked loop shows.
    expect(lag.count).toBeGreaterThan(10);
    expect(lag.percentile(99) / 1e6, summary).toBeLessThan(200);
  }, 60_000);
});
