#!/usr/bin/env python3
"""Measure a Lambda function binary's init time: from process start until it
asks the Lambda Runtime API for its first event (GET .../invocation/next),
which is when Lambda would hand it one. The Runtime API is emulated here on
127.0.0.1; the function gets dummy configuration and credentials, so no
network call happens at init (the real SDK makes none either: credentials
come from the environment in Lambda).

    scripts/aws/measure-init.py BINARY [RUNS]   -> prints min/median/max in ms
    scripts/aws/measure-init.py BINARY --invoke EVENT.json
        -> hands the function one event and prints its response (a smoke test
           of a release binary; point AWS_ENDPOINT_URL and the BORA_*
           variables at real resources if the event needs them)
"""
import http.server
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

binary = sys.argv[1]
invoke = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--invoke" else None
runs = 1 if invoke else (int(sys.argv[2]) if len(sys.argv) > 2 else 20)


class Handler(http.server.BaseHTTPRequestHandler):
    ready = None
    event = None
    response = None
    done = threading.Event()

    def do_GET(self):  # noqa: N802 (the stdlib's name)
        if self.path.endswith("/invocation/next") and Handler.ready is not None:
            Handler.ready.set()
        if Handler.event is not None and self.path.endswith("/invocation/next"):
            body, Handler.event = Handler.event, None
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:f")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        # Otherwise never answer: the function stays blocked waiting.
        time.sleep(5)

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        Handler.response = (self.path, self.rfile.read(length).decode())
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()
        Handler.done.set()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()

env = dict(os.environ)
env.update(
    {
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(binary),
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_STREAM_NAME": "measure",
        "AWS_LAMBDA_LOG_GROUP_NAME": "measure",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "BORA_TABLE": "bora",
        "BORA_RUN_TASK_QUEUE_URL": "http://127.0.0.1:9/q/run-task",
        "BORA_COMPLETE_TASK_QUEUE_URL": "http://127.0.0.1:9/q/complete-task",
        "BORA_KMS_KEY_ID": "alias/bora",
        "RUST_LOG": "warn",
    }
)

if invoke:
    for key in ("BORA_TABLE", "BORA_RUN_TASK_QUEUE_URL", "BORA_COMPLETE_TASK_QUEUE_URL", "BORA_KMS_KEY_ID"):
        if key in os.environ:
            env[key] = os.environ[key]
    Handler.event = open(invoke, "rb").read()

times = []
for _ in range(runs):
    Handler.ready = threading.Event()
    start = time.perf_counter()
    proc = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ok = Handler.ready.wait(10)
    elapsed = (time.perf_counter() - start) * 1000
    if invoke:
        if not Handler.done.wait(30):
            proc.kill()
            sys.exit(f"{binary} did not answer the event")
        print(Handler.response[0])
        print(Handler.response[1])
    proc.kill()
    proc.wait()
    if not ok:
        sys.exit(f"{binary} never asked for an event")
    times.append(elapsed)

if invoke:
    sys.exit(0)
print(
    f"{os.path.basename(binary)}: init min {min(times):.1f} ms, "
    f"median {statistics.median(times):.1f} ms, max {max(times):.1f} ms over {runs} runs"
)
