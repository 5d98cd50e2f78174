// A small PostgreSQL storage adapter for oidc-provider (ours; OIDC_ADAPTER=postgres), so the
// peer can also be measured with its artifacts in a database, like AuthGate on PostgreSQL.
// One table, one row per artifact, payload as jsonb.
import pg from 'pg';

let pool;

export async function connect(url) {
  pool = new pg.Pool({ connectionString: url, max: Number(process.env.OIDC_PG_POOL || 8) });
  await pool.query(`CREATE TABLE IF NOT EXISTS oidc_payloads (
    id text NOT NULL, type text NOT NULL, payload jsonb NOT NULL,
    grant_id text, user_code text, uid text,
    expires_at timestamptz, consumed_at timestamptz,
    PRIMARY KEY (id, type))`);
  await pool.query('CREATE INDEX IF NOT EXISTS oidc_payloads_grant ON oidc_payloads (grant_id)');
  await pool.query('CREATE INDEX IF NOT EXISTS oidc_payloads_uid ON oidc_payloads (uid) WHERE uid IS NOT NULL');
  await pool.query('CREATE INDEX IF NOT EXISTS oidc_payloads_user_code ON oidc_payloads (user_code) WHERE user_code IS NOT NULL');
}

const LIVE = '(expires_at IS NULL OR expires_at > now())';

function row(result) {
  const r = result.rows[0];
  if (!r) return undefined;
  return r.consumed_at ? { ...r.payload, consumed: true } : r.payload;
}

export default class PostgresAdapter {
  constructor(name) {
    this.name = name;
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
    await pool.query(
      `INSERT INTO oidc_payloads (id, type, payload, grant_id, user_code, uid, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id, type) DO UPDATE SET payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id,
         user_code = EXCLUDED.user_code, uid = EXCLUDED.uid, expires_at = EXCLUDED.expires_at`,
      [id, this.name, payload, payload.grantId ?? null, payload.userCode ?? null, payload.uid ?? null, expiresAt],
    );
  }

  async find(id) {
    return row(await pool.query(
      `SELECT payload, consumed_at FROM oidc_payloads WHERE id = $1 AND type = $2 AND ${LIVE}`, [id, this.name],
    ));
  }

  async findByUid(uid) {
    return row(await pool.query(
      `SELECT payload, consumed_at FROM oidc_payloads WHERE uid = $1 AND type = $2 AND ${LIVE}`, [uid, this.name],
    ));
  }

  async findByUserCode(userCode) {
    return row(await pool.query(
      `SELECT payload, consumed_at FROM oidc_payloads WHERE user_code = $1 AND type = $2 AND ${LIVE}`,
      [userCode, this.name],
    ));
  }

  async consume(id) {
    await pool.query('UPDATE oidc_payloads SET consumed_at = now() WHERE id = $1 AND type = $2', [id, this.name]);
  }

  async destroy(id) {
    await pool.query('DELETE FROM oidc_payloads WHERE id = $1 AND type = $2', [id, this.name]);
  }

  async revokeByGrantId(grantId) {
    await pool.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
  }
}
