// Benchmark helper: the official TypeScript worker serving one claimed item until the session ends.
// Env: HANDS_BASE_URL, HANDS_ENVIRONMENT_ID, HANDS_ENVIRONMENT_KEY, HANDS_SESSION_ID, HANDS_WORK_ID, HANDS_WORK_SECRET, HANDS_WORKDIR.
const Anthropic = require('@anthropic-ai/sdk').default;
const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: 'unused', maxRetries: 0, logLevel: 'warn' });
const worker = client.beta.environments.work.worker({
  environmentId: process.env.HANDS_ENVIRONMENT_ID,
  environmentKey: process.env.HANDS_ENVIRONMENT_KEY,
  workdir: process.env.HANDS_WORKDIR,
  maxIdleMs: 300,
  memorySyncIntervalMs: null,
});
worker
  .handleItem({ environmentId: process.env.HANDS_ENVIRONMENT_ID, workId: process.env.HANDS_WORK_ID, sessionId: process.env.HANDS_SESSION_ID, workSecret: process.env.HANDS_WORK_SECRET })
  .then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
