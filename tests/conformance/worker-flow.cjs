// The official TypeScript EnvironmentWorker, unmodified: claims exactly one work item and runs its session's tool
// calls until the session goes idle with end_turn (maxIdleMs later it stops and force-stops the item).
// Env: HANDS_BASE_URL, HANDS_ENVIRONMENT_ID, HANDS_ENVIRONMENT_KEY, HANDS_WORKDIR; HANDS_MEMORY_SYNC_MS turns memory stores
// on with that sync interval (off otherwise), HANDS_MEMORY_SYNC_DELETIONS sets memorySyncDeletions.
const Anthropic = require('@anthropic-ai/sdk').default;

async function main() {
  const environmentId = process.env.HANDS_ENVIRONMENT_ID;
  const environmentKey = process.env.HANDS_ENVIRONMENT_KEY;
  // The worker never uses the API key; the client just needs some credential to construct.
  const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: 'unused-by-the-worker', maxRetries: 0, logLevel: 'warn' });
  const worker = client.beta.environments.work.worker({
    environmentId,
    environmentKey,
    workdir: process.env.HANDS_WORKDIR,
    maxIdleMs: 300,
    memorySyncIntervalMs: process.env.HANDS_MEMORY_SYNC_MS ? Number(process.env.HANDS_MEMORY_SYNC_MS) : null,
    ...(process.env.HANDS_MEMORY_SYNC_DELETIONS ? { memorySyncDeletions: process.env.HANDS_MEMORY_SYNC_DELETIONS } : {}),
  });
  const poller = client.beta.environments.work.poller({ environmentId, environmentKey, drain: true, autoStop: false, blockMs: 999 });
  let handled = 0;
  for await (const work of poller) {
    await worker.handleItem({
      workId: work.id,
      environmentId: work.environment_id,
      sessionId: work.data.id,
      workSecret: work.secret ?? undefined,
      environmentKey,
    });
    handled++;
    break;
  }
  console.log(JSON.stringify({ handled }));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
