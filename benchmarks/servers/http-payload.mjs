// The JSON body of the HTTP benchmark's `json` mode, shared by every server that has the mode.
// A fresh object per call, so each server pays for building and serialising it per request
// (1,052 bytes as JSON).
export function makePayload() {
  const items = [];
  for (let i = 0; i < 19; i++) items.push({ id: i, name: `item-${i}`, price: 10 + i, inStock: i % 3 !== 0 });
  return { ok: true, message: 'Hello, World!', count: items.length, items };
}
