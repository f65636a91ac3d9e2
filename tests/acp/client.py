"""A real ACP client, built on the official Python SDK (PyPI
`agent-client-protocol`), driving `tether acp` for tests/acp.rs.

Usage: python3 client.py SCENARIO
Environment: TETHER_BIN (the binary), ACP_WORKSPACE (the session's cwd),
ACP_ANSWER (the permission option to choose), ACP_SESSION (for `load`);
the TETHER_* model and data settings are passed on to the agent.

Prints one JSON object (what the client saw) as its last line of stdout.
Every wait is bounded: a hang fails with a message instead of blocking.
"""

import asyncio
import json
import os
import sys

from acp import (
    PROTOCOL_VERSION,
    embedded_text_resource,
    resource_block,
    resource_link_block,
    spawn_agent_process,
    text_block,
)
from acp.interfaces import Client
from acp.schema import (
    AllowedOutcome,
    ClientCapabilities,
    DeniedOutcome,
    FileSystemCapabilities,
    ReadTextFileResponse,
    RequestPermissionResponse,
    WriteTextFileResponse,
)

TIMEOUT = 60


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class Recorder(Client):
    """Records every update and request; answers permissions with ACP_ANSWER."""

    def __init__(self, answer=None, buffers=None):
        self.updates = []
        self.permissions = []
        self.reads = []
        self.writes = []
        self.answer = answer
        self.buffers = buffers or {}
        self.conn = None
        self.asked = asyncio.Event()
        self.never_answer = False

    def on_connect(self, conn):
        self.conn = conn

    async def session_update(self, session_id, update, **kwargs):
        self.updates.append(dump(update))

    async def request_permission(self, session_id, tool_call, options, **kwargs):
        self.permissions.append(
            {"toolCall": dump(tool_call), "options": [dump(o) for o in options]}
        )
        self.asked.set()
        if self.never_answer:
            # A client that never answers: the agent must not wait for it
            # once the turn is cancelled.
            await asyncio.Event().wait()
        if self.answer == "cancelled":
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=self.answer)
        )

    async def read_text_file(self, session_id, path, line=None, limit=None, **kwargs):
        self.reads.append(path)
        if path in self.buffers:
            return ReadTextFileResponse(content=self.buffers[path])
        with open(path, encoding="utf-8") as f:
            return ReadTextFileResponse(content=f.read())

    async def write_text_file(self, session_id, path, content, **kwargs):
        # The editor keeps the edit in its buffer; the disk is not touched.
        self.writes.append({"path": path, "content": content})
        self.buffers[path] = content
        return WriteTextFileResponse()


def agent_env():
    env = dict(os.environ)
    return env


async def start(client, fs=False):
    ctx = spawn_agent_process(
        client,
        os.environ["TETHER_BIN"],
        "acp",
        env=agent_env(),
        transport_kwargs={"stderr": None},
    )
    conn, proc = await ctx.__aenter__()
    caps = ClientCapabilities(
        fs=FileSystemCapabilities(read_text_file=fs, write_text_file=fs), terminal=False
    )
    init = await asyncio.wait_for(
        conn.initialize(protocol_version=PROTOCOL_VERSION, client_capabilities=caps),
        TIMEOUT,
    )
    return ctx, conn, dump(init)


def texts(updates, kind):
    return [
        u["content"]["text"]
        for u in updates
        if u.get("sessionUpdate") == kind and u.get("content", {}).get("type") == "text"
    ]


async def scenario_stream():
    c = Recorder()
    ctx, conn, init = await start(c)
    ws = os.environ["ACP_WORKSPACE"]
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("say hello")]), TIMEOUT
    )
    await ctx.__aexit__(None, None, None)
    return {
        "init": init,
        "sessionId": s.session_id,
        "stopReason": r.stop_reason,
        "chunks": texts(c.updates, "agent_message_chunk"),
        "kinds": [u.get("sessionUpdate") for u in c.updates],
        "commands": [
            cmd["name"]
            for u in c.updates
            if u.get("sessionUpdate") == "available_commands_update"
            for cmd in u["availableCommands"]
        ],
        "usage": [u for u in c.updates if u.get("sessionUpdate") == "usage_update"],
    }


async def scenario_permission():
    c = Recorder(answer=os.environ.get("ACP_ANSWER"))
    ctx, conn, _ = await start(c)
    ws = os.environ["ACP_WORKSPACE"]
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("clean the build")]),
        TIMEOUT,
    )
    await ctx.__aexit__(None, None, None)
    return {
        "stopReason": r.stop_reason,
        "permissions": c.permissions,
        "updates": c.updates,
    }


async def scenario_cancel():
    c = Recorder()
    c.never_answer = True
    ctx, conn, _ = await start(c)
    ws = os.environ["ACP_WORKSPACE"]
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    prompt = asyncio.ensure_future(
        conn.prompt(session_id=s.session_id, prompt=[text_block("clean the build")])
    )
    await asyncio.wait_for(c.asked.wait(), TIMEOUT)
    await conn.cancel(session_id=s.session_id)
    r = await asyncio.wait_for(prompt, TIMEOUT)
    await ctx.__aexit__(None, None, None)
    return {"stopReason": r.stop_reason, "permissions": c.permissions, "updates": c.updates}


async def scenario_load():
    ws = os.environ["ACP_WORKSPACE"]
    first = Recorder()
    ctx, conn, _ = await start(first)
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("remember the number 42")]),
        TIMEOUT,
    )
    await ctx.__aexit__(None, None, None)
    # A new process, as when the editor restarts: the session comes back.
    second = Recorder()
    ctx, conn, init = await start(second)
    await asyncio.wait_for(
        conn.load_session(cwd=ws, session_id=s.session_id, mcp_servers=[]), TIMEOUT
    )
    replayed = list(second.updates)
    r2 = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("what was it?")]), TIMEOUT
    )
    await ctx.__aexit__(None, None, None)
    return {
        "loadSession": init["agentCapabilities"].get("loadSession"),
        "firstStop": r.stop_reason,
        "replayed": replayed,
        "user": texts(replayed, "user_message_chunk"),
        "agent": texts(replayed, "agent_message_chunk"),
        "secondStop": r2.stop_reason,
        "secondChunks": texts(second.updates[len(replayed):], "agent_message_chunk"),
    }


async def scenario_fs():
    ws = os.environ["ACP_WORKSPACE"]
    path = os.path.join(os.path.realpath(ws), "a.txt")
    # The editor holds unsaved text for a.txt: the agent must see and edit it.
    c = Recorder(answer="allow_once", buffers={path: "first file (unsaved)\n"})
    ctx, conn, _ = await start(c, fs=True)
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("edit a.txt")]), TIMEOUT
    )
    await ctx.__aexit__(None, None, None)
    return {
        "stopReason": r.stop_reason,
        "reads": c.reads,
        "writes": c.writes,
        "updates": c.updates,
        "permissions": c.permissions,
    }


async def scenario_context():
    """A prompt with a resource link and an embedded resource."""
    ws = os.environ["ACP_WORKSPACE"]
    c = Recorder()
    ctx, conn, _ = await start(c)
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    link = "file://" + os.path.join(os.path.realpath(ws), "src", "lib.rs")
    r = await asyncio.wait_for(
        conn.prompt(
            session_id=s.session_id,
            prompt=[
                text_block("explain these"),
                resource_link_block(name="lib.rs", uri=link),
                resource_block(
                    embedded_text_resource("file:///elsewhere/unsaved.py", "UNSAVED_MARKER = 1")
                ),
            ],
        ),
        TIMEOUT,
    )
    await ctx.__aexit__(None, None, None)
    return {"stopReason": r.stop_reason}


async def scenario_session_allow():
    """"Allow for session": the same command later in the session is not asked again."""
    ws = os.environ["ACP_WORKSPACE"]
    c = Recorder(answer="allow_session")
    ctx, conn, _ = await start(c)
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    stops = []
    for text in ("clean the build", "clean it again"):
        r = await asyncio.wait_for(
            conn.prompt(session_id=s.session_id, prompt=[text_block(text)]), TIMEOUT
        )
        stops.append(r.stop_reason)
    # A new session asks again.
    s2 = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    c.answer = "deny"
    r = await asyncio.wait_for(
        conn.prompt(session_id=s2.session_id, prompt=[text_block("and here")]), TIMEOUT
    )
    stops.append(r.stop_reason)
    await ctx.__aexit__(None, None, None)
    return {"stops": stops, "permissions": c.permissions}


async def scenario_fs_boundary():
    """The gate still judges first: what it refuses never reaches the client's files."""
    ws = os.environ["ACP_WORKSPACE"]
    c = Recorder(answer="deny")
    ctx, conn, _ = await start(c, fs=True)
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("try it")]), TIMEOUT
    )
    await ctx.__aexit__(None, None, None)
    return {
        "stopReason": r.stop_reason,
        "reads": c.reads,
        "writes": c.writes,
        "permissions": c.permissions,
    }


async def scenario_mcp():
    """An MCP server given in session/new is started and its tool used."""
    from acp.schema import McpServerStdio

    ws = os.environ["ACP_WORKSPACE"]
    c = Recorder(answer="allow_once")
    ctx, conn, init = await start(c)
    server = McpServerStdio(name="time", command=os.environ["ACP_MCP_TIME"], args=[], env=[])
    s = await asyncio.wait_for(conn.new_session(cwd=ws, mcp_servers=[server]), TIMEOUT)
    r = await asyncio.wait_for(
        conn.prompt(session_id=s.session_id, prompt=[text_block("what time is it in UTC?")]),
        TIMEOUT,
    )
    await ctx.__aexit__(None, None, None)
    return {
        "mcpCapabilities": init["agentCapabilities"].get("mcpCapabilities"),
        "stopReason": r.stop_reason,
        "updates": c.updates,
        "permissions": c.permissions,
    }


SCENARIOS = {
    "mcp": scenario_mcp,
    "fs_boundary": scenario_fs_boundary,
    "context": scenario_context,
    "session_allow": scenario_session_allow,
    "stream": scenario_stream,
    "permission": scenario_permission,
    "cancel": scenario_cancel,
    "load": scenario_load,
    "fs": scenario_fs,
}


def main():
    out = asyncio.run(SCENARIOS[sys.argv[1]]())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
