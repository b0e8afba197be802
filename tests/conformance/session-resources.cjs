// Session listing filters and session resources through the official SDK, unmodified: sessions.list with
// memory_store_id, agent_version and created_at[gt|gte|lt|lte]; sessions.resources.list (paged), retrieve, update,
// delete and add on a self-hosted session.
// Env: HANDS_BASE_URL, HANDS_API_KEY. Prints one JSON summary line on stdout.
const Anthropic = require('@anthropic-ai/sdk').default;
const { statusOf: status } = require('./sdk-errors.cjs');

async function ids(page) {
  const out = [];
  for await (const s of page) out.push(s.id);
  return out;
}

async function main() {
  const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: process.env.HANDS_API_KEY, maxRetries: 0 });
  const sessions = client.beta.sessions;
  const env = await client.beta.environments.create({ name: 'resources-conformance', config: { type: 'self_hosted' } });
  const notes = await client.beta.memoryStores.create({ name: 'notes' });
  const rules = await client.beta.memoryStores.create({ name: 'rules' });
  const agent = await client.beta.agents.create({ name: 'r', model: 'scripted:hello', tools: [{ type: 'agent_toolset_20260401' }] });

  const plain = await sessions.create({ agent: agent.id, environment_id: env.id });
  const withNotes = await sessions.create({
    agent: agent.id, environment_id: env.id,
    resources: [{ type: 'memory_store', memory_store_id: notes.id }, { type: 'memory_store', memory_store_id: rules.id, access: 'read_only' }],
  });
  await client.beta.agents.update(agent.id, { version: 1, description: 'second version' });
  const onVersion2 = await sessions.create({ agent: agent.id, environment_id: env.id, resources: [{ type: 'memory_store', memory_store_id: rules.id }] });

  const out = { plain: plain.id, withNotes: withNotes.id, onVersion2: onVersion2.id, version2: onVersion2.agent.version };
  out.byNotes = await ids(sessions.list({ memory_store_id: notes.id }));
  out.byRules = await ids(sessions.list({ memory_store_id: rules.id, order: 'asc' }));
  out.byVersion1 = await ids(sessions.list({ agent_id: agent.id, agent_version: 1, order: 'asc' }));
  out.byVersion2 = await ids(sessions.list({ agent_id: agent.id, agent_version: 2 }));
  out.createdGte = await ids(sessions.list({ 'created_at[gte]': withNotes.created_at, order: 'asc' }));
  out.createdGt = await ids(sessions.list({ 'created_at[gt]': withNotes.created_at, order: 'asc' }));
  out.createdLt = await ids(sessions.list({ 'created_at[lt]': withNotes.created_at, order: 'asc' }));
  out.createdLte = await ids(sessions.list({ 'created_at[lte]': withNotes.created_at, order: 'asc' }));
  out.badCreatedAt = await status(sessions.list({ 'created_at[gt]': 'yesterday' }));

  const listed = [];
  for await (const r of sessions.resources.list(withNotes.id, { limit: 1 })) listed.push(`${r.type}:${r.name}:${r.access}:${r.mount_path}`);
  out.resources = listed;
  out.firstPage = (await sessions.resources.list(withNotes.id, { limit: 1 })).data.length;
  out.noResources = (await sessions.resources.list(plain.id)).data.length;
  out.retrieve = await status(sessions.resources.retrieve('sesrsc_nope', { session_id: withNotes.id }));
  out.update = await status(sessions.resources.update('sesrsc_nope', { session_id: withNotes.id, authorization_token: 'ghp_x' }));
  out.delete = await status(sessions.resources.delete('sesrsc_nope', { session_id: withNotes.id }));
  out.add = await status(sessions.resources.add(withNotes.id, { type: 'file', file_id: 'file_nope' }));
  out.unknownSession = await status(sessions.resources.list('sesn_nope'));
  console.log(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
