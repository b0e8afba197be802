// A worker credential (a work item's sessions token, or an environment key) against the memory endpoints, through the official SDK (as the TS worker uses it).
// Env: HANDS_BASE_URL, HANDS_TOKEN, HANDS_STORE_ID (attached read_write), HANDS_READONLY_STORE_ID (attached
// read_only), HANDS_FOREIGN_STORE_ID (not attached). Prints one JSON line of statuses.
const Anthropic = require('@anthropic-ai/sdk').default;
const { statusOf: status } = require('./sdk-errors.cjs');

async function main() {
  const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: null, authToken: process.env.HANDS_TOKEN, maxRetries: 0 });
  const m = client.beta.memoryStores.memories;
  const rw = process.env.HANDS_STORE_ID;
  const ro = process.env.HANDS_READONLY_STORE_ID;
  const foreign = process.env.HANDS_FOREIGN_STORE_ID;
  console.log(JSON.stringify({
    listAttached: await status(m.list(rw)),
    createAttached: await status(m.create(rw, { path: '/from-token.md', content: 'hi' })),
    listReadOnly: await status(m.list(ro)),
    createReadOnly: await status(m.create(ro, { path: '/nope.md', content: 'x' })),
    listForeign: await status(m.list(foreign)),
    createStore: await status(client.beta.memoryStores.create({ name: 'x' })),
    redactAttached: await status(client.beta.memoryStores.memoryVersions.redact('memver_any', { memory_store_id: rw })),
  }));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
