// Event shapes newer than the first reference, through the official SDK 1.14.0: a thread and a workflow run's events,
// a refusal's stop_details, a session.error of a new type. Env: HANDS_BASE_URL, HANDS_API_KEY. Prints one JSON line.
const Anthropic = require('@anthropic-ai/sdk').default;

async function turn(client, sessionId, text, endsWith) {
  const stream = await client.beta.sessions.events.stream(sessionId);
  const seen = [];
  const reading = (async () => {
    for await (const event of stream) {
      seen.push(event);
      if (event.type === 'session.status_idle' && event.stop_reason && event.stop_reason.type === endsWith) break;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  await client.beta.sessions.events.send(sessionId, { events: [{ type: 'user.message', content: [{ type: 'text', text }] }] });
  await reading;
  return seen;
}

async function main() {
  const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: process.env.HANDS_API_KEY, maxRetries: 0 });
  const env = await client.beta.environments.create({ name: 'newer-events', config: { type: 'self_hosted' } });
  const agent = await client.beta.agents.create({ name: 'newer', model: 'scripted:newer-events', tools: [{ type: 'agent_toolset_20260401' }] });
  const session = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id });

  const first = await turn(client, session.id, 'go', 'refusal');
  const second = await turn(client, session.id, 'go on', 'retries_exhausted');
  const listed = [];
  for await (const event of client.beta.sessions.events.list(session.id)) listed.push(event);
  const idle = (events, reason) => events.find((e) => e.type === 'session.status_idle' && e.stop_reason.type === reason);
  const thread = first.find((e) => e.type === 'session.thread_created');
  const created = first.find((e) => e.type === 'workflow_run.created');
  const error = second.find((e) => e.type === 'session.error');

  console.log(JSON.stringify({
    firstTypes: first.map((e) => e.type),
    refusalDetails: idle(first, 'refusal').stop_details,
    threadWorkflowRunId: thread && thread.workflow_run_id,
    workflowPhases: created && created.phases,
    error: error && error.error,
    exhaustedDetailsIsNull: idle(second, 'retries_exhausted').stop_details === null,
    listedTypes: listed.map((e) => e.type),
  }));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
