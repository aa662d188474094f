/**
 * QUIC connection ids that say where their connection lives (the seed's ScidGenerator): 14 bits
 * of every id zero-io issues encode (serverId, shardId) jointly — 16,384 cluster slots split
 * between the two fields, the shard count a power of two within each server. IoCluster's
 * `DcidDispatch` steers each datagram to the shard named by its destination id (in the kernel,
 * by a reuseport BPF program); an L4 load balancer in front of several servers routes by the
 * serverId bits the same way (QUIC-LB style: the bits sit at a fixed place, bytes 1-2 of the id).
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { IoError } from './errors.js';

/** The 14 bits of a connection id that hold (serverId, shardId). */
export const SERVER_ID_MASK = 0x3fff;
/** Length of the connection ids zero-io issues. */
export const CID_LENGTH = 12;

/** Where a connection id's slot sits: bytes 1-2, low 14 bits, big-endian. */
export function cidSlot(cid: Uint8Array): number {
  if (cid.length < 3) throw new IoError('InvalidArgument', `ScidGenerator: a connection id of ${cid.length} bytes carries no slot (3 at least)`);
  return ((cid[1] << 8) | cid[2]) & SERVER_ID_MASK;
}

export class ScidGenerator {
  /** The 14-bit slot this generator writes: serverId << shardBits | shardId. */
  readonly slot: number;
  readonly shardBits: number;
  /**
   * @param serverId this server among those behind one load balancer: 0 to 2^(14 - shardBits) - 1
   * @param shardId this shard of the server: 0 to shardCount - 1
   * @param shardCount the server's shards: a power of two (1, 2, 4, ...)
   */
  constructor(readonly serverId: number, readonly shardId: number, readonly shardCount: number) {
    if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 16_384 || (shardCount & (shardCount - 1)) !== 0) {
      throw new IoError('InvalidConfig', `ScidGenerator: shardCount must be a power of two from 1 to 16384, got ${String(shardCount)}`, { key: 'shardCount' });
    }
    this.shardBits = Math.log2(shardCount);
    const servers = 2 ** (14 - this.shardBits);
    if (!Number.isInteger(shardId) || shardId < 0 || shardId >= shardCount) {
      throw new IoError('InvalidConfig', `ScidGenerator: shardId must be an integer from 0 to ${shardCount - 1}, got ${String(shardId)}`, { key: 'shardId' });
    }
    if (!Number.isInteger(serverId) || serverId < 0 || serverId >= servers) {
      throw new IoError('InvalidConfig', `ScidGenerator: serverId must be an integer from 0 to ${servers - 1} with ${shardCount} shards per server, got ${String(serverId)}`, { key: 'serverId' });
    }
    this.slot = (serverId << this.shardBits) | shardId;
  }

  /** A fresh random connection id carrying this generator's slot. */
  generate(): Uint8Array {
    const id = new Uint8Array(CID_LENGTH);
    randomFillSync(id);
    id[1] = (id[1] & 0xc0) | ((this.slot >> 8) & 0x3f);
    id[2] = this.slot & 0xff;
    return id;
  }

  /** The (serverId, shardId) a connection id names, for servers of `shardCount` shards. */
  static decode(cid: Uint8Array, shardCount: number): { serverId: number; shardId: number } {
    const slot = cidSlot(cid);
    const bits = Math.log2(shardCount);
    if (!Number.isInteger(bits)) throw new IoError('InvalidArgument', `ScidGenerator.decode: shardCount must be a power of two, got ${String(shardCount)}`);
    return { serverId: slot >> bits, shardId: slot & (shardCount - 1) };
  }
}
