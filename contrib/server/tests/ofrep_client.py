"""Evaluates flags through the published Python OFREP provider.

Usage: python ofrep_client.py BASE_URL < cases.jsonl
Each input line: {"flag", "type", "default", "context"}; each output line:
{"value", "variant", "reason", "errorCode"} from the OpenFeature client.
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext


def main() -> None:
    api.set_provider(OFREPProvider(base_url=sys.argv[1]))
    client = api.get_client()
    getters = {
        "boolean": client.get_boolean_details,
        "string": client.get_string_details,
        "integer": client.get_integer_details,
        "float": client.get_float_details,
        "object": client.get_object_details,
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        context = dict(case.get("context") or {})
        key = context.pop("targetingKey", None)
        details = getters[case["type"]](
            case["flag"], case["default"], EvaluationContext(targeting_key=key, attributes=context)
        )
        print(
            json.dumps(
                {
                    "value": details.value,
                    "variant": details.variant,
                    "reason": str(details.reason.value if hasattr(details.reason, "value") else details.reason),
                    "errorCode": details.error_code.value if details.error_code else None,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
