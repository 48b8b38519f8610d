"""The old Flask dashboard's Set Action, rebuilt for the benchmark's baseline.

What the console replaces did this per click (its store's shape is the
`jobs` table of the legacy file the importer reads): insert the job into a
SQLite file, call the cluster's HTTP API with `requests`, store the answer's
summary, commit, answer JSON. Served by gunicorn with 5 sync workers, as it
was deployed. No idempotency, no guard rails: the baseline is the old
product's cost, not a fair rival.
"""

import json
import os
import sqlite3
import uuid
from datetime import datetime, timezone

import requests
from flask import Flask, abort, jsonify, request

DB = os.environ["OLD_DASHBOARD_DB"]
CLUSTER = os.environ["OLD_DASHBOARD_CLUSTER"]
CLUSTER_TOKEN = os.environ["OLD_DASHBOARD_CLUSTER_TOKEN"]
API_TOKEN = os.environ["OLD_DASHBOARD_API_TOKEN"]

app = Flask(__name__)
session = requests.Session()


def connect():
    conn = sqlite3.connect(DB, timeout=30)
    return conn


def init():
    conn = connect()
    conn.execute(
        """CREATE TABLE IF NOT EXISTS jobs (
            job_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, action_code INTEGER,
            action_name TEXT, cids TEXT, cluster_url TEXT, request_payload TEXT,
            response_summary TEXT, created_at TEXT NOT NULL)"""
    )
    conn.commit()
    conn.close()


init()


@app.post("/api/v1/actions")
def set_action():
    if request.headers.get("Authorization") != f"Bearer {API_TOKEN}":
        abort(401)
    body = request.get_json()
    cids = body["cids"]
    job_id = str(uuid.uuid4())
    payload = {"action": body["action"], "cids": cids}
    conn = connect()
    conn.execute(
        "INSERT INTO jobs (job_id, user_id, action_code, action_name, cids, cluster_url, request_payload, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (job_id, "admin", 1, body["action"], json.dumps(cids), CLUSTER, json.dumps(payload),
         datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")),
    )
    conn.commit()
    answer = session.post(
        f"{CLUSTER}/api/v1/customers/actions",
        json={"action_code": 1, "cids": cids},
        headers={"Authorization": f"Bearer {CLUSTER_TOKEN}", "Idempotency-Key": job_id},
        timeout=30,
    )
    summary = answer.text[:500]
    conn.execute("UPDATE jobs SET response_summary = ? WHERE job_id = ?", (summary, job_id))
    conn.commit()
    conn.close()
    return jsonify({"job_id": job_id, "status": "succeeded" if answer.ok else "failed"}), (
        201 if answer.ok else 502
    )
