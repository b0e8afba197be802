namespace Hands.ControlPlane.Storage;

/// <summary>The database schema. Resources are stored as their API JSON plus the columns queries filter on.</summary>
internal static class Schema
{
    private const int Version = 2;

    public static void Apply(Sql sql)
    {
        var current = sql.Scalar<long>("PRAGMA user_version");
        if (current > Version)
        {
            throw new InvalidOperationException($"The data directory was written by a newer Hands (schema {current}, this build knows {Version}).");
        }

        sql.Exec("""
            CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS environments(id TEXT PRIMARY KEY, archived INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS environment_keys(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,
                created_at TEXT NOT NULL, revoked_at TEXT);
            CREATE TABLE IF NOT EXISTS agents(id TEXT PRIMARY KEY, version INTEGER NOT NULL, archived INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS agent_versions(agent_id TEXT NOT NULL, version INTEGER NOT NULL, json TEXT NOT NULL,
                PRIMARY KEY(agent_id, version));
            CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, agent_id TEXT NOT NULL,
                status TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0, deleted_at_ms INTEGER, json TEXT NOT NULL, loop TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS sessions_env ON sessions(environment_id);
            CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, session_id TEXT NOT NULL,
                type TEXT NOT NULL, json TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS events_session ON events(session_id, seq);
            CREATE TABLE IF NOT EXISTS work(id TEXT PRIMARY KEY, environment_id TEXT NOT NULL, session_id TEXT NOT NULL,
                state TEXT NOT NULL, claimed_at_ms INTEGER, claimed_by TEXT, last_heartbeat TEXT, ttl_seconds INTEGER,
                lease_expires_ms INTEGER, json TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS work_env_state ON work(environment_id, state);
            CREATE INDEX IF NOT EXISTS work_session ON work(session_id);
            CREATE TABLE IF NOT EXISTS sessions_tokens(hash TEXT PRIMARY KEY, work_id TEXT NOT NULL, session_id TEXT NOT NULL,
                environment_id TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX IF NOT EXISTS sessions_tokens_work ON sessions_tokens(work_id);
            CREATE TABLE IF NOT EXISTS skills(id TEXT PRIMARY KEY, json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS skill_versions(skill_id TEXT NOT NULL, version TEXT NOT NULL, json TEXT NOT NULL,
                content BLOB NOT NULL, PRIMARY KEY(skill_id, version));
            CREATE TABLE IF NOT EXISTS webhook_endpoints(id TEXT PRIMARY KEY, secret TEXT NOT NULL, json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS webhook_outbox(id TEXT NOT NULL, endpoint_id TEXT NOT NULL, body TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, PRIMARY KEY(id, endpoint_id));
            CREATE TABLE IF NOT EXISTS memory_stores(id TEXT PRIMARY KEY, archived INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS memories(id TEXT PRIMARY KEY, store_id TEXT NOT NULL, path TEXT NOT NULL, content TEXT NOT NULL,
                sha TEXT NOT NULL, size INTEGER NOT NULL, version_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                UNIQUE(store_id, path));
            CREATE TABLE IF NOT EXISTS memory_versions(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, store_id TEXT NOT NULL,
                memory_id TEXT NOT NULL, json TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS memory_versions_store ON memory_versions(store_id, seq);
            """);
        sql.Exec($"PRAGMA user_version = {Version}");
    }
}
