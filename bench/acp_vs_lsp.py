#!/usr/bin/env python3
"""`initialize` latency and RSS of `tether acp` beside `tether lsp`.

Usage: python3 bench/acp_vs_lsp.py PATH/TO/tether [RUNS]

For each mode (and ACP's `initialize` + `session/new`, where ACP builds
the engine that LSP builds in `initialize`), RUNS times (after one unmeasured spawn that creates the
database): spawn the binary, send `initialize` (ACP: one JSON line;
LSP: a Content-Length frame), time spawn → response, read VmRSS from
/proc/PID/status right after the response, close stdin, wait for the exit.
Standard library only; the data dir is a fresh temporary directory.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_lsp(stdout):
    length = None
    while True:
        line = stdout.readline()
        if not line:
            raise RuntimeError("lsp: stdout closed")
        line = line.strip()
        if not line:
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return json.loads(stdout.read(length))


def once(binary, mode, env, cwd, new_session=False):
    t0 = time.perf_counter()
    p = subprocess.Popen(
        [binary, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )
    if mode == "acp":
        msg = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
               "params": {"protocolVersion": 1, "clientCapabilities": {
                   "fs": {"readTextFile": True, "writeTextFile": True}}}}
        p.stdin.write((json.dumps(msg) + "\n").encode())
        p.stdin.flush()
        resp = json.loads(p.stdout.readline())
        if new_session:
            # The engine (config, store, model client) is built here, as
            # LSP builds it in `initialize`.
            msg = {"jsonrpc": "2.0", "id": 1, "method": "session/new",
                   "params": {"cwd": cwd, "mcpServers": []}}
            p.stdin.write((json.dumps(msg) + "\n").encode())
            p.stdin.flush()
            while True:
                resp = json.loads(p.stdout.readline())
                if resp.get("id") == 1:
                    break
    else:
        msg = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
               "params": {"processId": os.getpid(), "rootUri": "file://" + cwd,
                          "capabilities": {}}}
        body = json.dumps(msg).encode()
        p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        p.stdin.flush()
        resp = read_lsp(p.stdout)
    elapsed = time.perf_counter() - t0
    assert "result" in resp, resp
    rss = rss_kib(p.pid)
    p.stdin.close()
    p.wait(timeout=10)
    return elapsed * 1000, rss / 1024


def main():
    binary = os.path.abspath(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TETHER_", "OPENAI_", "XDG_"))}
        env.update(HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, "config"),
                   TETHER_DATA_DIR=os.path.join(tmp, "data"),
                   TETHER_MODEL="bench", TETHER_BASE_URL="http://127.0.0.1:9/v1")
        print(f"binary: {binary}; load: {os.getloadavg()}")
        for label, mode, new in (("lsp initialize", "lsp", False),
                                 ("acp initialize", "acp", False),
                                 ("acp initialize + session/new", "acp", True)):
            once(binary, mode, env, tmp, new)
            ms, mib = zip(*(once(binary, mode, env, tmp, new) for _ in range(runs)))
            q = statistics.quantiles(ms, n=10)
            print(f"{label}: median {statistics.median(ms):.2f} ms "
                  f"(min {min(ms):.2f}, p90 {q[-1]:.2f}, max {max(ms):.2f}); "
                  f"RSS median {statistics.median(mib):.1f} MiB "
                  f"(min {min(mib):.1f}, max {max(mib):.1f}); {runs} runs")


if __name__ == "__main__":
    main()
