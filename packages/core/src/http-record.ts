/**
 * Reading a request record (native/shard/http1_conn.h): the words at its start, the field
 * table, the head bytes. Shared by the borrowed event (over the whole pool) and the owned
 * request (over its own slot). Strings are decoded as latin1, as node:http does.
 * @internal
 * @module
 */
import { IoError, describeValue } from './errors.js';

/** A Buffer over the same memory as the bytes read, with Node's offset-taking latin1 decoder. */
export type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

export const R_METHOD = 0, R_TARGET = 8, R_PATH = 16, R_QUERY = 24, R_BODY = 32, R_COUNT = 40, R_FLAGS = 44;
const R_FIELDS = 64, FIELD_BYTES = 12;
export const METHODS = ['', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
export const REQ_STREAMED = 1;
export const REQ_KEEP_ALIVE = 2;
export const REQ_HTTP10 = 8;

export function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 16777216;
}
function u16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

/**
 * A record that does not hold together: read after its event was over (the memory is another
 * request's, or free). Never a loop over garbage or a read out of the record.
 */
export function expired(): IoError {
  return new IoError('BorrowExpired',
    'a request event (HttpRequest, WsOpen, WsUpgrade) was read after its handler call returned: events are borrowed ' +
    '(one reused object). Copy what you need during the call (const { conn, requestId } = ev; const path = ev.path), or ' +
    'keep an HTTP request with io.detachHttpRequest(). (new Io({ debug: { checkBorrows: true } }) catches every such read.)');
}

/** The span whose offset/length words are at `word` of the record at `r` (`size` bytes). */
export function span(b: Uint8Array, d: Latin1Buffer, r: number, size: number, word: number): string {
  const off = u32(b, r + word), len = u32(b, r + word + 4);
  if (off + len > size) throw expired();
  return len === 0 ? '' : d.latin1Slice(r + off, r + off + len);
}

/** The field count, checked against the record's size. */
function fieldCount(b: Uint8Array, r: number, size: number): number {
  const n = u32(b, r + R_COUNT);
  if (R_FIELDS + n * FIELD_BYTES > size) throw expired();
  return n;
}

/** The first field named `name` (ASCII case-insensitive), or null. */
export function findField(b: Uint8Array, d: Latin1Buffer, r: number, size: number, name: string): string | null {
  if (typeof name !== 'string') throw new IoError('InvalidArgument', `header(name): expected a string, got ${describeValue(name)}`);
  const n = fieldCount(b, r, size);
  const want = name.length;
  for (let i = 0, t = r + R_FIELDS; i < n; i++, t += FIELD_BYTES) {
    if (u16(b, t + 8) !== want) continue;
    const at = r + u32(b, t);
    let k = 0;
    for (; k < want; k++) {
      let x = b[at + k];
      if (x >= 65 && x <= 90) x += 32;
      let y = name.charCodeAt(k);
      if (y >= 65 && y <= 90) y += 32;
      if (x !== y) break;
    }
    if (k === want) {
      const vo = u32(b, t + 4), vl = u16(b, t + 10);
      if (vo + vl > size) throw expired();
      return d.latin1Slice(r + vo, r + vo + vl);
    }
  }
  return null;
}

/** Every field as [name, value], in order. */
export function allFields(b: Uint8Array, d: Latin1Buffer, r: number, size: number): [string, string][] {
  const n = fieldCount(b, r, size);
  const out: [string, string][] = [];
  for (let i = 0, t = r + R_FIELDS; i < n; i++, t += FIELD_BYTES) {
    const ko = u32(b, t), kl = u16(b, t + 8), vo = u32(b, t + 4), vl = u16(b, t + 10);
    if (ko + kl > size || vo + vl > size) throw expired();
    out.push([d.latin1Slice(r + ko, r + ko + kl), d.latin1Slice(r + vo, r + vo + vl)]);
  }
  return out;
}

/** The method: from its number when it is a standard one, else its text. */
export function methodOf(num: number, b: Uint8Array, d: Latin1Buffer, r: number, size: number): string {
  return num > 0 && num < METHODS.length ? METHODS[num] : span(b, d, r, size, R_METHOD);
}

// ---- the request fields of events that carry a record (HttpRequest, WsOpen, WsUpgrade) ----

/** Event record types whose off/len words point at a request record (registerRecordEvent). */
const recordTypes = new Set<number>();

interface RecordCursor {
  _io(): { _i32: Int32Array; _u32: Uint32Array; poolBytes: Uint8Array; _pool: ArrayBuffer; _recBuf?: Latin1Buffer };
  _base(): number;
}

function recordOf(c: RecordCursor): { b: Uint8Array; d: Latin1Buffer; r: number; size: number } {
  const io = c._io();
  const base = c._base();
  if (!recordTypes.has(io._i32[base])) throw expired();
  return { b: io.poolBytes, d: (io._recBuf ??= Buffer.from(io._pool) as Latin1Buffer), r: io._u32[base + 4], size: io._u32[base + 5] };
}

// An event of a record type with no record (size 0: a WebSocket client's WsOpen) reads as a
// request with no path, query or fields.
function spanField(word: number): PropertyDescriptor {
  return {
    get(this: RecordCursor) {
      const { b, d, r, size } = recordOf(this);
      return size === 0 ? '' : span(b, d, r, size, word);
    },
    configurable: true,
  };
}

/**
 * @internal An event type (native record type) whose record is a request record: the shared
 * getters `path`, `query`, `target`, `header(name)` and `headers()` read it for that type too.
 * Returns them for registerEventType (the flyweight has one getter per name for every type).
 */
export function registerRecordEvent(type: number): PropertyDescriptorMap {
  recordTypes.add(type);
  return {
    path: spanField(R_PATH),
    query: spanField(R_QUERY),
    target: spanField(R_TARGET),
    header: {
      value(this: RecordCursor, name: string) {
        const { b, d, r, size } = recordOf(this);
        return size === 0 ? null : findField(b, d, r, size, name);
      },
      configurable: true, writable: true,
    },
    headers: {
      value(this: RecordCursor) {
        const { b, d, r, size } = recordOf(this);
        return size === 0 ? [] : allFields(b, d, r, size);
      },
      configurable: true, writable: true,
    },
  };
}
