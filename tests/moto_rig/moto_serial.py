"""moto's server with one request at a time.

moto's DynamoDB backend checks a condition and applies the write without a lock between them,
and moto_server runs werkzeug threaded, so concurrent conditional updates of one item can both
pass their condition (seen: a cap of 100 ended at 101 with 200 parallel writers). Real DynamoDB
serialises writes to an item; so does this wrapper, keeping the threaded server (keep-alive
works) but running moto's app under one lock. The budget tests need it for their concurrency
guarantee; the other tests use moto_server itself.

Usage: python moto_serial.py HOST PORT
"""
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

_lock = threading.Lock()
_app = DomainDispatcherApplication(create_backend_app)


def app(environ, start_response):
    with _lock:
        return list(_app(environ, start_response))


if __name__ == "__main__":
    run_simple(sys.argv[1], int(sys.argv[2]), app, threaded=True, request_handler=MotoRequestHandler)
