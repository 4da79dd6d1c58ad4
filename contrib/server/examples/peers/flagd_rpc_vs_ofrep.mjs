// flagd's JS provider over RPC beside the JS OFREP provider, through one
// OpenFeature client with TASKS concurrent loops, against a server started by
// run.sh. Arguments: HTTP_PORT GRPC_PORT SECONDS TASKS. Prints one JSON line:
// resolutions per second (best of two rounds per mode, alternating) and this
// process's CPU per resolution in µs.
import { OpenFeature } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';
import { OFREPProvider } from '@openfeature/ofrep-provider';
const [httpPort, grpcPort, seconds, tasks] = process.argv.slice(2).map(Number);
await OpenFeature.setProviderAndWait('rpc', new FlagdProvider({ host: '127.0.0.1', port: grpcPort, resolverType: 'rpc', cache: 'disabled' }));
await OpenFeature.setProviderAndWait('ofrep', new OFREPProvider({ baseUrl: `http://127.0.0.1:${httpPort}` }));
const ctx = { targetingKey: 'user-1', email: 'ada@example.com' };
async function round(domain) {
  const client = OpenFeature.getClient(domain);
  const first = await client.getBooleanDetails('banner', false, ctx);
  if (first.value !== true) throw new Error(`${domain}: ${JSON.stringify(first)}`);
  let n = 0; const end = performance.now() + seconds * 1000;
  const c0 = process.cpuUsage(); const t0 = performance.now();
  await Promise.all(Array.from({ length: tasks }, async () => {
    while (performance.now() < end) {
      if (!(await client.getBooleanValue('banner', false, ctx))) throw new Error(`${domain}: wrong value`);
      n++;
    }
  }));
  const c = process.cpuUsage(c0);
  return [n / ((performance.now() - t0) / 1000), (c.user + c.system) / n];
}
const best = { rpc: [0, 0], ofrep: [0, 0] };
for (let i = 0; i < 2; i++) for (const d of ['rpc', 'ofrep']) { const r = await round(d); if (r[0] > best[d][0]) best[d] = r; }
console.log(JSON.stringify({ tasks, rpc_per_s: Math.round(best.rpc[0]), rpc_client_cpu_us: +best.rpc[1].toFixed(1),
  ofrep_per_s: Math.round(best.ofrep[0]), ofrep_client_cpu_us: +best.ofrep[1].toFixed(1), ratio: +(best.rpc[0] / best.ofrep[0]).toFixed(2) }));
await OpenFeature.close(); process.exit(0);
