"""flagd's Python provider over RPC beside the Python OFREP provider, through one
OpenFeature client on one thread, against a server started by run.sh.

Arguments: HTTP_PORT GRPC_PORT SECONDS. Prints one JSON line: resolutions per
second (best of two rounds per mode, alternating) and this process's CPU
per resolution in µs.
"""
import sys, time, json
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType, CacheType
from openfeature.contrib.provider.ofrep import OFREPProvider

http_port, grpc_port, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
api.set_provider(FlagdProvider(resolver_type=ResolverType.RPC, host="127.0.0.1", port=grpc_port, cache=CacheType.DISABLED), "rpc")
api.set_provider(OFREPProvider(f"http://127.0.0.1:{http_port}"), "ofrep")
ctx = EvaluationContext("user-1", {"email": "ada@example.com"})

def rnd(domain):
    client = api.get_client(domain)
    for _ in range(100):
        d = client.get_boolean_details("banner", False, ctx)
        if d.value is True:
            break
        time.sleep(0.05)
    assert d.value is True, (domain, d)
    n, end = 0, time.perf_counter() + seconds
    c0 = time.process_time(); t0 = time.perf_counter()
    while time.perf_counter() < end:
        if not client.get_boolean_value("banner", False, ctx):
            raise SystemExit(f"{domain}: wrong value")
        n += 1
    return n / (time.perf_counter() - t0), (time.process_time() - c0) * 1e6 / n

best = {"rpc": (0, 0), "ofrep": (0, 0)}
for _ in range(2):
    for dom in ("rpc", "ofrep"):
        r = rnd(dom)
        if r[0] > best[dom][0]:
            best[dom] = r
print(json.dumps({"rpc_per_s": round(best["rpc"][0]), "rpc_client_cpu_us": round(best["rpc"][1], 1),
                  "ofrep_per_s": round(best["ofrep"][0]), "ofrep_client_cpu_us": round(best["ofrep"][1], 1),
                  "ratio": round(best["rpc"][0] / best["ofrep"][0], 2)}))
api.shutdown()
