"""A Flask app using flask-pancake on the same Redis as a Flagyard service.

    pip install "flask-pancake==0.5.2" "flask-redis==0.4.0" Flask
    REDIS_URL=redis://127.0.0.1:6379 flask --app examples/flask_pancake_app.py run --port 5000
    curl 'http://127.0.0.1:5000/?user=ada'

It declares the same switch, flag and sample as providers/examples/pancake.rs;
a change made with `flagyard pancake …` or the /admin page shows here on the
next request, and a change made here (`/enable-new-ui`) shows in the Rust app.
"""

import os

from flask import Flask, g, jsonify, request
from flask_pancake import Flag, FlaskPancake, Sample, Switch
from flask_redis import FlaskRedis

NEW_UI = Switch("NEW_UI", default=False)
BETA = Flag("BETA", default=False)
ROLLOUT = Sample("ROLLOUT", default=25)

app = Flask(__name__)
app.config["REDIS_URL"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
app.secret_key = os.environ.get("SECRET_KEY", "dev-only-secret")  # flask-pancake signs its sample cookie
FlaskRedis(app)
FlaskPancake(app, group_funcs={"user": lambda: g.get("user")})


@app.before_request
def who():
    g.user = request.args.get("user")


@app.get("/")
def index():
    return jsonify(
        user=g.user,
        NEW_UI=NEW_UI.is_active(),
        BETA=BETA.is_active(),
        ROLLOUT=ROLLOUT.is_active(),
        ROLLOUT_RATIO=ROLLOUT.get(),
    )


@app.post("/enable-new-ui")
def enable_new_ui():
    NEW_UI.enable()
    return jsonify(NEW_UI=True)
