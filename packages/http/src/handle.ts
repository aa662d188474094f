/**
 * Answers from other threads: `IoHandle.httpRespond` (a worker answers a request the shard's
 * thread handed it), and owned requests moved to a worker (`HttpOwnedRequest.transfer()`).
 * @module
 */
import { IoError, IoHandle, type ConnId } from '@zero-io/core';
import { OP, describeValue, pushFailed } from '@zero-io/core/internal';
import { ZeroResponse } from './response.js';

declare module '@zero-io/core' {
  interface IoHandle {
    /**
     * Answers request `requestId` of `conn` from any thread (as `io.httpRespond` on the shard's
     * thread; answers still leave in request order). The response is copied into the command.
     * A request that is gone by the time the shard takes the command is a no-op; a response the
     * shard cannot write is reported to the shard's owner as `HandleRejected` (op
     * 'httpRespond'). Throws PoolExhausted when the shard's command queue is full.
     */
    httpRespond(conn: ConnId, requestId: number, response: ZeroResponse): void;
  }
}

IoHandle.prototype.httpRespond = function httpRespond(this: IoHandle, conn: ConnId, requestId: number, response: ZeroResponse): void {
  if (!(response instanceof ZeroResponse)) {
    throw new IoError('InvalidArgument', `IoHandle.httpRespond: expected a ZeroResponse, got ${describeValue(response)}`);
  }
  if (typeof requestId !== 'number' || !Number.isInteger(requestId) || requestId < 0 || requestId > 0xffffffff) {
    throw new IoError('InvalidArgument', `IoHandle.httpRespond: requestId must be the event's requestId, got ${describeValue(requestId)}`);
  }
  const r = this._push(OP.HTTP_RESPOND, conn, requestId, response._encoded());
  if (r !== 0) pushFailed(r, 'httpRespond');
};
