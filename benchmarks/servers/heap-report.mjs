// Optional JS-heap allocation report shared by the Node echo servers.
//
// Enabled with ZIO_HEAP_REPORT=1; run the server under
//   node --max-semi-space-size=64 --expose-gc <server> PORT
// so scavenges are rarer and gc() exists.
//
// The measured window starts at the first 1 s tick that has seen frames, or
// when SIGUSR2 arrives (with ZIO_HEAP_WAIT_SIGNAL=1 only then; the runner
// sends it when the load generator's warmup ends). At the start gc() is called
// once, so the window begins with no garbage left over, heapUsed is recorded
// and a v8.GCProfiler is started. At the end (SIGTERM/SIGINT):
//
//   allocated = heapUsed(end) - heapUsed(start) + sum over GCs of (usedHeapSize before - after)
//
// i.e. what is still live plus everything the GCs in the window reclaimed;
// this is exact however many GCs ran. gcCount is the number of GCs observed
// with a PerformanceObserver (entryTypes ['gc']), not counting our own gc().
// One JSON line goes to stderr and the process exits.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

const FORCED = constants.NODE_PERFORMANCE_GC_FLAGS_FORCED;

/**
 * @param {() => number} getFrames  running count of frames (StreamFrame / 'data' events)
 * @param {string} label            server name, echoed in the report
 * @returns {boolean} whether the report is enabled
 */
export function installHeapReport(getFrames, label) {
  if (process.env.ZIO_HEAP_REPORT !== '1') return false;
  const waitSignal = process.env.ZIO_HEAP_WAIT_SIGNAL === '1';

  let gcCount = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (!((e.detail?.flags ?? 0) & FORCED)) gcCount++;
  });
  obs.observe({ entryTypes: ['gc'] });

  let started = false;
  let t0 = 0;
  let frames0 = 0;
  let gc0 = 0;
  let heap0 = 0;
  let profiler = null;

  function start() {
    if (started) return;
    if (typeof globalThis.gc === 'function') globalThis.gc();
    else process.stderr.write(`${label}: gc() unavailable, run node with --expose-gc\n`);
    started = true;
    t0 = performance.now();
    frames0 = getFrames();
    gc0 = gcCount;
    heap0 = process.memoryUsage().heapUsed;
    profiler = new v8.GCProfiler();
    profiler.start();
  }

  const timer = setInterval(() => {
    if (!started && !waitSignal && getFrames() > 0) start();
  }, 1000);
  timer.unref();
  process.on('SIGUSR2', start);

  function finish() {
    clearInterval(timer);
    let report;
    if (!started) {
      report = { server: label, frames: 0, heapDeltaBytes: 0, gcCount: 0, bytesPerFrame: null, note: 'window never started (no frames)' };
    } else {
      const heap1 = process.memoryUsage().heapUsed;
      const frames = getFrames() - frames0;
      const seconds = (performance.now() - t0) / 1000;
      const stats = profiler.stop()?.statistics ?? [];
      let reclaimed = 0;
      for (const s of stats) reclaimed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
      const allocated = heap1 - heap0 + reclaimed;
      report = {
        server: label,
        frames,
        heapDeltaBytes: allocated,
        gcCount: gcCount - gc0,
        bytesPerFrame: frames > 0 ? allocated / frames : null,
        heapUsedStart: heap0,
        heapUsedEnd: heap1,
        reclaimedBytes: reclaimed,
        profiledGcs: stats.length,
        seconds,
      };
    }
    obs.disconnect();
    process.stderr.write(JSON.stringify(report) + '\n', () => process.exit(0));
  }
  process.once('SIGTERM', finish);
  process.once('SIGINT', finish);
  return true;
}
