"""Evaluates the differential test's flags with the Python flagd core
(openfeature-flagd-core). Reads a JSON array on stdin, one item per flag:
{"document", "flag", "type", "contexts": [...]}; writes one JSON line per
item: the answers, one per context ({value, variant, reason, errorCode})."""

import json
import logging
import sys

from openfeature.contrib.tools.flagd.core import FlagdCore
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError

logging.disable(logging.CRITICAL)

DEFAULTS = {"boolean": False, "string": "DEFAULT", "number": -1, "object": {}}


def thrown(kind, e):
    return {"value": DEFAULTS[kind], "variant": None, "reason": "ERROR",
            "errorCode": "THROWN", "message": repr(e)}


def answer(core, item, context):
    kind = item["type"]
    ctx = dict(context)
    key = ctx.pop("targetingKey", None)
    resolve = {
        "boolean": core.resolve_boolean_value,
        "string": core.resolve_string_value,
        "number": core.resolve_float_value,
        "object": core.resolve_object_value,
    }[kind]
    try:
        r = resolve(item["flag"], DEFAULTS[kind], EvaluationContext(targeting_key=key, attributes=ctx))
    except OpenFeatureError as e:
        return {"value": DEFAULTS[kind], "variant": None, "reason": "ERROR",
                "errorCode": e.error_code.value, "message": str(e)}
    except Exception as e:  # the core itself failed
        return thrown(kind, e)
    reason = r.reason.value if hasattr(r.reason, "value") else r.reason
    return {"value": r.value, "variant": r.variant, "reason": str(reason),
            "errorCode": r.error_code.value if r.error_code else None}


def main() -> None:
    lines = []
    for item in json.load(sys.stdin):
        core = FlagdCore()
        try:
            core.set_flags(item["document"])
            answers = [answer(core, item, c) for c in item["contexts"]]
        except Exception as e:  # the document was refused
            answers = [thrown(item["type"], e) for _ in item["contexts"]]
        lines.append(json.dumps(answers))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
