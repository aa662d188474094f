/**
 * ZeroResponse: an HTTP response built in JS and serialised by the engine. A response object
 * used twice becomes a native template (its fields checked and stored once): answering with a
 * reused response then passes four numbers to the engine and allocates nothing in JS.
 * @module
 */
import { IoError, SendBuffer } from '@zero-io/core';
import { describeValue, type NativeAddon } from '@zero-io/core/internal';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\r\n\0]/;
// Framing is the engine's: it writes these from the request and the body it is given.
const ENGINE_FIELDS = new Set(['content-length', 'transfer-encoding', 'connection', 'date', 'keep-alive']);

const templates = new FinalizationRegistry<{ native: NativeAddon; id: number }>((t) => {
  t.native.httpTemplateFree(t.id);
});

/**
 * An HTTP response: status, header fields and a body. Build it with a static constructor and
 * chain setters (they change this object and return it):
 *
 * ```ts
 * const hello = ZeroResponse.ok().text('hello');          // build once at start-up ...
 * io.httpRespond(ev.conn, ev.requestId, hello);             // ... answer many times: no JS heap
 * io.httpRespond(ev.conn, ev.requestId, ZeroResponse.notFound().json({ error: 'no such item' }));
 * ```
 *
 * The engine adds `Date` (cached per second), `Content-Length` and, where the request needs it,
 * `Connection`; HEAD requests get the head without the body. There is no `Server` field unless
 * you set one.
 */
export class ZeroResponse {
  #status: number;
  #fields: string[] = [];
  #body: Uint8Array | string | null = null;
  #native: NativeAddon | null = null;
  #template = -1;
  #uses = 0;
  #wire: Uint8Array | null = null;  // the IoHandle command form (encoded once, until changed)

  private constructor(status: number) {
    this.#status = status;
  }

  /** A response with any final status (200 to 999; 1xx are not final answers). */
  static status(code: number): ZeroResponse {
    if (!Number.isInteger(code) || code < 200 || code > 999) {
      throw new IoError('InvalidArgument', `ZeroResponse.status: the status must be an integer from 200 to 999, got ${describeValue(code)}`);
    }
    return new ZeroResponse(code);
  }
  /** 200 OK. */
  static ok(): ZeroResponse { return new ZeroResponse(200); }
  /** 201 Created. */
  static created(): ZeroResponse { return new ZeroResponse(201); }
  /** 204 No Content (no body is sent, whatever is set). */
  static noContent(): ZeroResponse { return new ZeroResponse(204); }
  /** 400 Bad Request. */
  static badRequest(): ZeroResponse { return new ZeroResponse(400); }
  /** 404 Not Found. */
  static notFound(): ZeroResponse { return new ZeroResponse(404); }
  /** 500 Internal Server Error. */
  static serverError(): ZeroResponse { return new ZeroResponse(500); }
  /**
   * A redirect to `url` (the `Location` field) with a 3xx status.
   * @param code 301, 302, 303, 307 or 308 @default 302
   */
  static redirect(url: string, code = 302): ZeroResponse {
    if (![301, 302, 303, 307, 308].includes(code)) {
      throw new IoError('InvalidArgument', `ZeroResponse.redirect: code must be 301, 302, 303, 307 or 308, got ${describeValue(code)}`);
    }
    return new ZeroResponse(code).header('Location', url);
  }

  /** The status code. */
  get statusCode(): number { return this.#status; }

  /**
   * Adds a header field (names keep their case; a name may repeat). The engine writes
   * Content-Length, Transfer-Encoding, Connection and Date itself: setting those throws.
   * Throws InvalidArgument for a name that is not a token or a value holding CR, LF or NUL
   * (response splitting).
   */
  header(name: string, value: string | number): this {
    if (typeof name !== 'string' || !TOKEN.test(name)) {
      throw new IoError('InvalidArgument', `ZeroResponse.header: ${describeValue(name)} is not a valid field name (RFC 9110 token characters only)`);
    }
    const v = typeof value === 'number' ? String(value) : value;
    if (typeof v !== 'string' || BAD_VALUE.test(v)) {
      throw new IoError('InvalidArgument', `ZeroResponse.header(${name}): the value must be a string without CR, LF or NUL, got ${describeValue(value)}`);
    }
    if (ENGINE_FIELDS.has(name.toLowerCase())) {
      throw new IoError('InvalidArgument', `ZeroResponse.header: ${name} is written by the engine (framing and Date come from the request and the body)`);
    }
    this.#fields.push(name, v);
    this.#changed();
    return this;
  }

  /** A text body (UTF-8); Content-Type `text/plain; charset=utf-8` unless one is set. */
  text(body: string): this {
    if (typeof body !== 'string') throw new IoError('InvalidArgument', `ZeroResponse.text: expected a string, got ${describeValue(body)}`);
    this.#defaultType('text/plain; charset=utf-8');
    this.#body = body;
    this.#changed();
    return this;
  }

  /** A JSON body (`JSON.stringify(value)`); Content-Type `application/json` unless one is set. */
  json(value: unknown): this {
    const s = JSON.stringify(value);
    if (s === undefined) throw new IoError('InvalidArgument', `ZeroResponse.json: ${describeValue(value)} has no JSON form`);
    this.#defaultType('application/json');
    this.#body = s;
    this.#changed();
    return this;
  }

  /**
   * A binary body; Content-Type `application/octet-stream` unless one is set. The bytes are
   * copied when the response is answered (or once, when it becomes a template): changing the
   * array afterwards changes later answers only until the response is reused.
   */
  bytes(body: Uint8Array): this {
    if (!(body instanceof Uint8Array)) throw new IoError('InvalidArgument', `ZeroResponse.bytes: expected a Uint8Array, got ${describeValue(body)}`);
    this.#defaultType('application/octet-stream');
    this.#body = body;
    this.#changed();
    return this;
  }

  /**
   * The bytes written into a {@link SendBuffer} (its first `length` bytes) as the body;
   * Content-Type `application/octet-stream` unless one is set. They are copied now (at most one
   * pool slot), so the buffer stays yours: release or reuse it as soon as this returns.
   */
  sendBuffer(buf: SendBuffer): this {
    if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', `ZeroResponse.sendBuffer: expected a SendBuffer (io.sendBuffer(n)), got ${describeValue(buf)}`);
    return this.bytes(buf.bytes.slice(0, buf.length));
  }

  #defaultType(type: string): void {
    for (let i = 0; i < this.#fields.length; i += 2) if (this.#fields[i].toLowerCase() === 'content-type') return;
    this.#fields.push('Content-Type', type);
  }

  #changed(): void {
    this.#wire = null;
    if (this.#template >= 0) {
      templates.unregister(this);
      this.#native!.httpTemplateFree(this.#template);
      this.#template = -1;
    }
    this.#uses = 0;
  }

  /** @internal status, fields and whether a body was set (streamed answers take the head only) */
  _head(): [number, string[], boolean] {
    return [this.#status, this.#fields, this.#body !== null];
  }

  /**
   * @internal the response as an IoHandle command carries it (native/shard/handle.h
   * kHandleHttpRespond): u16 status, u16 field count, u32 body bytes, per field u16 name and
   * value lengths and their bytes, then the body.
   */
  _encoded(): Uint8Array {
    if (this.#wire !== null) return this.#wire;
    const enc = new TextEncoder();
    const parts = this.#fields.map((f) => enc.encode(f));
    const body = this.#body === null ? new Uint8Array(0) : typeof this.#body === 'string' ? enc.encode(this.#body) : this.#body;
    let n = 8 + body.length;
    for (const p of parts) n += 2 + p.length;
    const out = new Uint8Array(n);
    const dv = new DataView(out.buffer);
    dv.setUint16(0, this.#status, true);
    dv.setUint16(2, parts.length / 2, true);
    dv.setUint32(4, body.length, true);
    let at = 8;
    for (let i = 0; i < parts.length; i += 2) {
      dv.setUint16(at, parts[i].length, true);
      dv.setUint16(at + 2, parts[i + 1].length, true);
      out.set(parts[i], at + 4);
      out.set(parts[i + 1], at + 4 + parts[i].length);
      at += 4 + parts[i].length + parts[i + 1].length;
    }
    out.set(body, at);
    return (this.#wire = out);
  }

  /** @internal answers with this response: a template from its second use on */
  _respond(native: NativeAddon, shard: number, conn: number, req: number): number {
    if (this.#template >= 0 && this.#native === native) return native.httpRespondTemplate(shard, conn, req, this.#template);
    if (++this.#uses >= 2 && this.#native === null) {
      this.#template = native.httpTemplate(this.#status, this.#fields, this.#body);
      this.#native = native;
      templates.register(this, { native, id: this.#template }, this);
      return native.httpRespondTemplate(shard, conn, req, this.#template);
    }
    return native.httpRespond(shard, conn, req, this.#status, this.#fields, this.#body);
  }
}
