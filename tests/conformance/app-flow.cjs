// The app side, through the official SDK: environment, agent, session, stream (opened first), send, list.
// Env: HANDS_BASE_URL, HANDS_API_KEY. Prints one JSON summary line on stdout.
const Anthropic = require('@anthropic-ai/sdk').default;

async function main() {
  const client = new Anthropic({ baseURL: process.env.HANDS_BASE_URL, apiKey: process.env.HANDS_API_KEY, maxRetries: 0 });
  const env = await client.beta.environments.create({ name: 'conformance', config: { type: 'self_hosted' } });
  const gotEnv = await client.beta.environments.retrieve(env.id);
  const agent = await client.beta.agents.create({ name: 'conf', model: 'scripted:hello', tools: [{ type: 'agent_toolset_20260401' }] });
  const session = await client.beta.sessions.create({ agent: agent.id, environment_id: env.id, title: 'from npm' });

  const stream = await client.beta.sessions.events.stream(session.id);
  const streamed = [];
  const reading = (async () => {
    for await (const event of stream) {
      streamed.push(event);
      if (event.type === 'session.status_idle' && event.stop_reason && event.stop_reason.type === 'end_turn') break;
    }
  })();
  await new Promise((r) => setTimeout(r, 200));
  const sent = await client.beta.sessions.events.send(session.id, {
    events: [{ type: 'user.message', content: [{ type: 'text', text: 'hello from npm' }] }],
  });
  await reading;

  const listed = [];
  for await (const event of client.beta.sessions.events.list(session.id, { limit: 2 })) listed.push(event);
  const retrieved = await client.beta.sessions.retrieve(session.id);
  const stats = await client.beta.environments.work.stats(env.id);

  let errorType = null;
  try {
    await client.beta.sessions.retrieve('sesn_does_not_exist');
  } catch (e) {
    errorType = e.type ?? (e.error && e.error.error && e.error.error.type);
  }

  console.log(JSON.stringify({
    environment: { id: env.id, sameOnRetrieve: gotEnv.id === env.id, config: env.config },
    agent: { id: agent.id, version: agent.version },
    session: { id: session.id, status: retrieved.status, title: retrieved.title },
    sentIds: sent.data.map((e) => e.id),
    streamedTypes: streamed.map((e) => e.type),
    agentText: streamed.filter((e) => e.type === 'agent.message').map((e) => e.content[0].text),
    listedTypes: listed.map((e) => e.type),
    listedIds: listed.map((e) => e.id),
    queueDepth: stats.depth,
    notFoundType: errorType,
  }));
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
