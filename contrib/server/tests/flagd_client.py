"""A Python app written for flagd: openfeature-provider-flagd (PyPI) in RPC or
in-process mode, pointed at `flagyard serve --grpc-listen`. Evaluates FLAG every
20 ms for a bounded time and prints one JSON line each time the answer changes.

Usage: flagd_client.py HOST PORT SELECTOR FLAG SECONDS [rpc|in-process]
(an empty SELECTOR sends none; in-process by default)
"""

import json
import sys
import time

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext


def main():
    host, port, selector, flag, seconds = sys.argv[1:6]
    mode = sys.argv[6] if len(sys.argv) > 6 else "in-process"
    resolver = ResolverType.IN_PROCESS if mode == "in-process" else ResolverType.RPC
    provider = FlagdProvider(host=host, port=int(port), resolver_type=resolver,
                             selector=selector or None, timeout=5, deadline_ms=2000)
    api.set_provider(provider)
    client = api.get_client()
    context = EvaluationContext(targeting_key="user-7", attributes={"email": "ada@example.com"})
    last = None
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        details = client.get_boolean_details(flag, False, context)
        answer = {
            "value": details.value,
            "variant": details.variant,
            "reason": str(details.reason) if details.reason else None,
            "error": str(details.error_code) if details.error_code else None,
            "message": details.error_message,
        }
        if answer != last:
            print(json.dumps(answer), flush=True)
            last = answer
        time.sleep(0.02)
    api.shutdown()


if __name__ == "__main__":
    main()
