// Benchmark helper: the official TypeScript worker's handleItem for one item, from process start. The benchmark
// measures the time until its first HTTP request reaches a loopback listener, then kills the process.
// Env: ANTHROPIC_BASE_URL, ANTHROPIC_ENVIRONMENT_ID, ANTHROPIC_ENVIRONMENT_KEY, ANTHROPIC_SESSION_ID, ANTHROPIC_WORK_ID.
const Anthropic = require('@anthropic-ai/sdk').default;
const client = new Anthropic({ baseURL: process.env.ANTHROPIC_BASE_URL, apiKey: 'unused', maxRetries: 0 });
const worker = client.beta.environments.work.worker({
  environmentId: process.env.ANTHROPIC_ENVIRONMENT_ID,
  environmentKey: process.env.ANTHROPIC_ENVIRONMENT_KEY,
  workdir: process.cwd(),
  memorySyncIntervalMs: null,
});
worker.handleItem({}).then(() => process.exit(0), () => process.exit(1));
