#!/usr/bin/env python3
"""xbench test program (external runtime protocol 1): answers `hello` with an `error` message
and exits with status 1, as a program that cannot load its model does. Standard library only."""

import json
import sys

if sys.stdin.readline():
    sys.stdout.write(json.dumps({"type": "error", "message": "this adapter refuses to load: test"}) + "\n")
    sys.stdout.flush()
sys.exit(1)
