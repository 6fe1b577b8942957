"""Serves localstripe on a free port of 127.0.0.1 and prints `port N` (or `error: ...`) first.

Started by tests/src/localstripe.rs as `python3 -c <this file> <expected localstripe version>`.
Unlike the `localstripe` command, it listens on loopback only, takes a port the kernel picks (no
race for a free port) and keeps its state in memory: the command would load and save
/tmp/localstripe.pickle, shared by every instance on the machine.
"""

import importlib.metadata
import socket
import sys

expected_version = sys.argv[1]
try:
    installed_version = importlib.metadata.version("localstripe")
    from aiohttp import web
    from localstripe import resources, server
except Exception as error:  # not installed, or installed without its dependencies
    print(f"error: localstripe is not installed ({error})", flush=True)
    sys.exit(1)
if installed_version != expected_version:
    print(
        f"error: localstripe {installed_version} is installed, the tests need {expected_version}",
        flush=True,
    )
    sys.exit(1)

resources.Store.dump_to_disk = lambda self: None

listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
print(f"port {listener.getsockname()[1]}", flush=True)
web.run_app(server.app, sock=listener, access_log=None, print=None)
