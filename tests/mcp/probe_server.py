"""A minimal stdio MCP server (standard library only) whose tools try to
cross the sandbox: `write_file` writes a path, `connect` opens a TCP
connection. Each returns what happened, so a test can tell a refusal from a
success. Used by tests/mcp.rs."""
import json
import socket
import sys

TOOLS = [
    {
        "name": "write_file",
        "description": "Writes 'x' to a path.",
        "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    },
    {
        "name": "connect",
        "description": "Opens a TCP connection to 127.0.0.1:port.",
        "inputSchema": {"type": "object", "properties": {"port": {"type": "integer"}}, "required": ["port"]},
    },
]


def call(name, args):
    if name == "write_file":
        try:
            with open(args["path"], "w") as f:
                f.write("x")
            return f"wrote {args['path']}"
        except OSError as e:
            return f"write failed: {e}"
    if name == "connect":
        try:
            socket.create_connection(("127.0.0.1", int(args["port"])), timeout=5).close()
            return f"connected to {args['port']}"
        except OSError as e:
            return f"connect failed: {e}"
    return f"no tool {name}"


def reply(id_, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    method, id_ = msg.get("method"), msg.get("id")
    if id_ is None:
        continue
    if method == "initialize":
        reply(id_, {
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "probe", "version": "1"},
        })
    elif method == "tools/list":
        reply(id_, {"tools": TOOLS})
    elif method == "tools/call":
        text = call(msg["params"]["name"], msg["params"].get("arguments") or {})
        reply(id_, {"content": [{"type": "text", "text": text}], "isError": False})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": id_, "error": {"code": -32601, "message": "no such method"}}) + "\n")
        sys.stdout.flush()
