// In-process storage adapter for oidc-provider (ours; OIDC_ADAPTER=memory, the default).
//
// oidc-provider's built-in MemoryAdapter is an LRU capped at 1000 entries and documented as
// development-only: under the benchmark's 64 concurrent refresh-token families it evicted live
// tokens ("refresh token not found"). This one is an unbounded Map with expiry: O(1) per
// operation, nothing lost, no I/O -- oidc-provider's best case (state in process memory).
const store = new Map(); // key -> { payload, expiresAt }
const grants = new Map(); // grantId -> Set of keys
const uids = new Map(); // session uid -> key
const userCodes = new Map(); // user code -> key

function live(entry) {
  return entry && (entry.expiresAt === 0 || entry.expiresAt > Date.now());
}

setInterval(() => {
  const now = Date.now();
  for (const [key, entry] of store) {
    if (entry.expiresAt !== 0 && entry.expiresAt <= now) store.delete(key);
  }
}, 60_000).unref();

export default class MapAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : 0 });
    if (payload.grantId) {
      let members = grants.get(payload.grantId);
      if (!members) grants.set(payload.grantId, (members = new Set()));
      members.add(key);
    }
    if (this.name === 'Session' && payload.uid) uids.set(payload.uid, key);
    if (payload.userCode) userCodes.set(payload.userCode, key);
  }

  async find(id) {
    const entry = store.get(this.key(id));
    return live(entry) ? entry.payload : undefined;
  }

  async findByUid(uid) {
    const entry = store.get(uids.get(uid));
    return live(entry) ? entry.payload : undefined;
  }

  async findByUserCode(userCode) {
    const entry = store.get(userCodes.get(userCode));
    return live(entry) ? entry.payload : undefined;
  }

  async consume(id) {
    const entry = store.get(this.key(id));
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    const key = this.key(id);
    const entry = store.get(key);
    store.delete(key);
    if (entry?.payload.grantId) grants.get(entry.payload.grantId)?.delete(key);
  }

  async revokeByGrantId(grantId) {
    for (const key of grants.get(grantId) ?? []) store.delete(key);
    grants.delete(grantId);
  }
}
