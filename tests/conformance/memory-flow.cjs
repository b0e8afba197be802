// Memory stores through the official SDK, unmodified: stores (create, retrieve, update, list, archive, delete),
// memories (create, list in both views with paging, path_prefix and depth roll-ups, retrieve, update with and without
// a content_sha256 precondition, rename, delete with expected_content_sha256), memory versions, and the errors the
// worker's sync depends on. Then the credential rules: an environment key is refused; a session's token reaches only
// the stores attached to that session, and writes only read_write ones.
// Env: HANDS_BASE_URL, HANDS_API_KEY. Prints one JSON summary line on stdout.
const crypto = require('node:crypto');
const Anthropic = require('@anthropic-ai/sdk').default;
const { outcomeOf: status } = require('./sdk-errors.cjs');

const sha = (s) => crypto.createHash('sha256').update(s, 'utf-8').digest('hex');

async function main() {
  const baseURL = process.env.HANDS_BASE_URL;
  const client = new Anthropic({ baseURL, apiKey: process.env.HANDS_API_KEY, maxRetries: 0 });
  const ms = client.beta.memoryStores;
  const out = {};

  const store = await ms.create({ name: 'User Preferences', description: 'what the user likes', metadata: { team: 'a' } });
  out.store = { idPrefix: store.id.slice(0, 9), type: store.type, name: store.name, description: store.description, archived_at: store.archived_at };
  out.retrieved = (await ms.retrieve(store.id)).name;
  out.updated = (await ms.update(store.id, { description: 'updated', metadata: { team: null, owner: 'b' } }));
  const listedStores = [];
  for await (const s of ms.list({ limit: 1 })) listedStores.push(s.id);
  out.listedStores = listedStores.includes(store.id);

  const created = await ms.memories.create(store.id, { path: '/prefs/food.md', content: 'likes tea' });
  out.created = {
    idPrefix: created.id.slice(0, 4), type: created.type, path: created.path, content: created.content ?? null,
    shaMatches: created.content_sha256 === sha('likes tea'), size: created.content_size_bytes,
    versionPrefix: created.memory_version_id.slice(0, 7), store: created.memory_store_id === store.id,
  };
  for (let i = 0; i < 25; i++) {
    await ms.memories.create(store.id, { path: `/notes/n${String(i).padStart(2, '0')}.md`, content: `note ${i}` });
  }
  await ms.memories.create(store.id, { path: '/notes/deep/a/b.md', content: 'deep' });
  await ms.memories.create(store.id, { path: '/top.md', content: '' });

  const basic = [];
  for await (const m of ms.memories.list(store.id, { view: 'basic', limit: 100 })) basic.push(m);
  out.basic = { count: basic.length, contentNull: basic.every((m) => m.content == null), sorted: basic.map((m) => m.path).join() === basic.map((m) => m.path).sort().join() };
  const firstFull = await ms.memories.list(store.id, { view: 'full', limit: 100 });
  out.fullPageSize = firstFull.data.length;
  out.fullHasContent = firstFull.data.every((m) => typeof m.content === 'string');
  const full = [];
  for await (const m of ms.memories.list(store.id, { view: 'full', limit: 20 })) full.push(m);
  out.fullCount = full.length;
  const small = [];
  for await (const m of ms.memories.list(store.id, { limit: 7 })) small.push(m.path);
  out.pagedSame = small.join() === basic.map((m) => m.path).join();

  const top = [];
  for await (const m of ms.memories.list(store.id, { depth: 1 })) top.push(`${m.type}:${m.path}`);
  out.depth1 = top;
  const underNotes = [];
  for await (const m of ms.memories.list(store.id, { path_prefix: '/notes/', depth: 1 })) underNotes.push(`${m.type}:${m.path}`);
  out.notesDepth1 = { count: underNotes.length, prefixes: underNotes.filter((p) => p.startsWith('memory_prefix')) };
  const prefixed = [];
  for await (const m of ms.memories.list(store.id, { path_prefix: '/prefs/' })) prefixed.push(m.path);
  out.prefixed = prefixed;

  const got = await ms.memories.retrieve(created.id, { memory_store_id: store.id });
  out.retrieveContent = got.content;
  const upd = await ms.memories.update(created.id, {
    memory_store_id: store.id, content: 'likes coffee', precondition: { type: 'content_sha256', content_sha256: sha('likes tea') },
  });
  out.update = { sha: upd.content_sha256 === sha('likes coffee'), newVersion: upd.memory_version_id !== created.memory_version_id };
  out.staleUpdate = await status(ms.memories.update(created.id, {
    memory_store_id: store.id, content: 'likes water', precondition: { type: 'content_sha256', content_sha256: sha('likes tea') },
  }));
  // A retry of the update that already landed: the state already equals the request.
  out.repeatedUpdate = await status(ms.memories.update(created.id, {
    memory_store_id: store.id, content: 'likes coffee', precondition: { type: 'content_sha256', content_sha256: sha('likes tea') },
  }));
  const renamed = await ms.memories.update(created.id, { memory_store_id: store.id, path: '/prefs/drinks.md' });
  out.renamed = { path: renamed.path, sameId: renamed.id === created.id };

  out.duplicatePath = await status(ms.memories.create(store.id, { path: '/prefs/drinks.md', content: 'x' }));
  out.overlappingPath = await status(ms.memories.create(store.id, { path: '/prefs/drinks.md/more', content: 'x' }));
  out.badPaths = {};
  for (const p of ['relative.md', '/a//b', '/a/../b', '/a/./b', '/trailing/', '/ctl\u0007', '/' + 'x'.repeat(1100), '/' + Array(21).fill('s').join('/')]) {
    out.badPaths[p.length > 40 ? `long:${p.length}` : p] = (await status(ms.memories.create(store.id, { path: p, content: 'x' }))).status;
  }
  out.tooLarge = (await status(ms.memories.create(store.id, { path: '/big.md', content: 'x'.repeat(102401) }))).status;
  out.maxSize = (await status(ms.memories.create(store.id, { path: '/big.md', content: 'x'.repeat(102400) }))).status;

  const top2 = basic.find((m) => m.path === '/top.md');
  out.staleDelete = await status(ms.memories.delete(top2.id, { memory_store_id: store.id, expected_content_sha256: sha('not this') }));
  const deleted = await ms.memories.delete(top2.id, { memory_store_id: store.id, expected_content_sha256: sha('') });
  out.deleted = deleted;
  out.deleteAgain = await status(ms.memories.delete(top2.id, { memory_store_id: store.id }));
  out.retrieveDeleted = await status(ms.memories.retrieve(top2.id, { memory_store_id: store.id }));

  const versions = [];
  for await (const v of ms.memoryVersions.list(store.id, { memory_id: created.id })) versions.push(v);
  out.versions = versions.map((v) => `${v.operation}:${v.path}:${v.created_by && v.created_by.type}`);
  const oneVersion = await ms.memoryVersions.retrieve(versions[versions.length - 1].id, { memory_store_id: store.id });
  out.firstVersionContent = oneVersion.content;
  // Redaction: an old version loses its content for good and still reads; the current one is refused; again is a no-op.
  const redacted = await ms.memoryVersions.redact(oneVersion.id, { memory_store_id: store.id });
  const reread = await ms.memoryVersions.retrieve(oneVersion.id, { memory_store_id: store.id });
  const again = await ms.memoryVersions.redact(oneVersion.id, { memory_store_id: store.id });
  out.redact = {
    nulls: [redacted.content, redacted.path, redacted.content_sha256, redacted.content_size_bytes].every((v) => v === null),
    by: redacted.redacted_by && redacted.redacted_by.type, at: typeof redacted.redacted_at === 'string',
    rereadNull: reread.content === null && reread.redacted_at === redacted.redacted_at, again: again.redacted_at === redacted.redacted_at,
    current: (await status(ms.memoryVersions.redact(versions[0].id, { memory_store_id: store.id }))).status,
    unknown: (await status(ms.memoryVersions.redact('memver_nope', { memory_store_id: store.id }))).status,
  };

  // A session attaching the store read_write and another read_only; their tokens, and the environment key.
  const env = await client.beta.environments.create({ name: 'memory-conformance', config: { type: 'self_hosted' } });
  const other = await ms.create({ name: 'other' });
  const agent = await client.beta.agents.create({ name: 'm', model: 'scripted:hello', tools: [{ type: 'agent_toolset_20260401' }] });
  const session = await client.beta.sessions.create({
    agent: agent.id, environment_id: env.id,
    resources: [{ type: 'memory_store', memory_store_id: store.id, access: 'read_write', instructions: 'keep notes' },
                { type: 'memory_store', memory_store_id: other.id, access: 'read_only' }],
  });
  out.sessionResources = session.resources.map((r) => ({ type: r.type, access: r.access, name: r.name, mount_path: r.mount_path, description: r.description, instructions: r.instructions }));
  out.unknownStore = (await status(client.beta.sessions.create({ agent: agent.id, environment_id: env.id, resources: [{ type: 'memory_store', memory_store_id: 'memstore_nope' }] }))).status;

  await ms.archive(other.id);
  out.archivedList = (await ms.list()).data.some((s) => s.id === other.id);
  out.archivedListAll = (await ms.list({ include_archived: true })).data.some((s) => s.id === other.id);
  out.deleteStore = await ms.delete(other.id);
  out.retrieveDeletedStore = (await status(ms.retrieve(other.id))).status;
  out.sessionId = session.id;
  out.environmentId = env.id;
  out.storeId = store.id;
  out.otherStoreId = other.id;
  console.log(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
