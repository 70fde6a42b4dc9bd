"""moto in server mode, with DynamoDB's per-request atomicity.

    python moto_server.py HOST PORT

moto serves requests on threads, and its DynamoDB backend updates an item
by reading and writing it back without a lock: two concurrent UpdateItem or
TransactWriteItems requests that ADD to one item can lose one of the adds
(seen here: a with-items counter at 3 after 4 items were counted, once in
several runs). Real DynamoDB applies each request atomically, and bora's
counters rely on that. So this wrapper serializes the DynamoDB requests
(X-Amz-Target: DynamoDB_*) with one lock, and leaves SQS (whose long polls
must not block anything) and KMS concurrent, as `moto_server` runs them.
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

DYNAMODB = threading.Lock()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with DYNAMODB:
                # The body is produced inside the lock: moto works lazily.
                return list(moto(environ, start_response))
        return moto(environ, start_response)

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
