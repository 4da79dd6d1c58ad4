"""flask-pancake itself (from PyPI, with Flask and flask-redis) as the other
side of the compatibility test: reads JSON commands, one per line, on stdin,
runs each through flask-pancake against the Redis at argv[1], and prints one
JSON result per line.

Commands: {"op": "is_active", "kind": "switch|flag|sample", "name": ..., "default": ..., "user": ...}
          {"op": "enable|disable|clear", "kind": ..., "name": ..., "default": ...}
          {"op": "set", "name": ..., "value": ...}                 (samples)
          {"op": "get", "name": ..., "default": ...}               (samples)
          {"op": "enable_user|disable_user|clear_user", "name": ..., "user": ...}
          {"op": "clear_all_users", "name": ...}
"""

import json
import sys

from flask import Flask, g
from flask_pancake import Flag, FlaskPancake, Sample, Switch
from flask_redis import FlaskRedis

KINDS = {"switch": Switch, "flag": Flag, "sample": Sample}


def main() -> None:
    app = Flask(__name__)
    app.config["REDIS_URL"] = sys.argv[1]
    FlaskRedis(app)
    FlaskPancake(app, group_funcs={"user": lambda: g.get("user_id")})
    declared = {}

    def pancake(kind, name, default):
        key = (kind, name)
        if key not in declared:
            declared[key] = KINDS[kind](name, default)
        return declared[key]

    for line in sys.stdin:
        if not line.strip():
            continue
        cmd = json.loads(line)
        op = cmd["op"]
        kind = cmd.get("kind", "sample" if op in ("set", "get") else "flag")
        default = cmd.get("default", 0 if kind == "sample" else False)
        with app.test_request_context():
            if cmd.get("user") is not None:
                g.user_id = cmd["user"]
            item = pancake(kind, cmd["name"], default)
            result = None
            if op == "is_active":
                result = item.is_active()
            elif op in ("enable", "disable", "clear"):
                getattr(item, op)()
            elif op == "set":
                item.set(cmd["value"])
            elif op == "get":
                result = item.get()
            elif op == "enable_user":
                item.enable_group("user", object_id=cmd["user"])
            elif op == "disable_user":
                item.disable_group("user", object_id=cmd["user"])
            elif op == "clear_user":
                item.clear_group("user", object_id=cmd["user"])
            elif op == "clear_all_users":
                item.clear_all_group("user")
            else:
                raise SystemExit(f"unknown op {op!r}")
        print(json.dumps({"op": op, "name": cmd["name"], "result": result}), flush=True)


if __name__ == "__main__":
    main()
