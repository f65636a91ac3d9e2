-- status() in every order the server's two streams can take: `tether/update`
-- notifications (what the chat shows) and work-done progress (`$/progress`)
-- come from different server tasks, so progress may lead or lag the updates,
-- a turn's progress `end` may come after its `turnEnd`, and the last turn's
-- `end` after the next turn has begun. Both are fed to the plugin the way
-- Neovim delivers them (the client's handler, the LspProgress event), step by
-- step; every step records status().
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()

local buf = H.edit('README.md')
local c = vim.lsp.get_clients({ name = 'tether', bufnr = buf })[1]
local status = require('tether.status')

H.result.steps = {}
local function step(name)
  table.insert(H.result.steps, { name, require('tether').status() })
end

local function update(u)
  local handler = c.handlers['tether/update'] or vim.lsp.handlers['tether/update']
  handler(nil, u, { method = 'tether/update', client_id = c.id })
end

local function progress(token, value)
  if value.kind ~= 'begin' then
    -- Neovim's $/progress handler carries the title over from `begin`.
    value.title = 'Tether'
  end
  vim.api.nvim_exec_autocmds('LspProgress', {
    pattern = value.kind,
    modeline = false,
    data = { client_id = c.id, params = { token = token, value = value } },
  })
end

local function tool(sid, tid, id, status_, title)
  update({
    sessionId = sid,
    turnId = tid,
    kind = 'toolCall',
    toolCallId = id,
    tool = 'run_command',
    title = title,
    status = status_,
  })
end

-- Progress alone (a client that sends no updates): shown, title not twice.
step('idle')
progress('p0', { kind = 'begin', title = 'Tether', message = 'thinking' })
step('p0 begin')
progress('p0', { kind = 'report', message = 'running `cargo test`', percentage = 40 })
step('p0 report')
progress('p0', { kind = 'end', message = 'done' })
step('p0 end')

-- Turn 1: the updates lead, the progress lags (its end comes in turn 2).
tool('s1', 't1', 'a', 'pending', 'Run `make`')
step('t1 pending before any progress')
tool('s1', 't1', 'a', 'running', 'Run `make`')
step('t1 running')
progress('p1', { kind = 'begin', title = 'Tether', message = 'thinking' })
step('t1 progress begin, late')
progress('p1', { kind = 'report', message = 'running Run `make`' })
step('t1 progress report, late')
tool('s1', 't1', 'a', 'completed', 'Run `make`')
step('t1 completed')
update({ sessionId = 's1', turnId = 't1', kind = 'text', delta = 'Done.' })
step('t1 text')
update({ sessionId = 's1', turnId = 't1', kind = 'turnEnd', stopReason = 'end_turn' })
step('t1 turnEnd')
progress('p1', { kind = 'report', message = 'writing' })
step('t1 progress report after turnEnd')

-- Turn 2 of the same session, started from the chat: the progress leads.
status.turn_started(c.id, 's1')
step('t2 started')
progress('p2', { kind = 'begin', title = 'Tether', message = 'thinking' })
progress('p2', { kind = 'report', message = 'running Run `sleep 9`' })
step('t2 progress ahead of the updates')
progress('p1', { kind = 'end', message = 'done' })
step('t1 progress end, during t2')
tool('s1', 't2', 'b', 'pending', 'Run `sleep 9`')
tool('s1', 't2', 'b', 'running', 'Run `sleep 9`')
step('t2 running')
update({ sessionId = 's1', turnId = 't1', kind = 'turnEnd', stopReason = 'end_turn' })
step('t1 turnEnd again, during t2')
tool('s1', 't2', 'c', 'running', 'Run `sleep 1`')
step('t2 second tool running')
tool('s1', 't2', 'c', 'completed', 'Run `sleep 1`')
step('t2 second tool completed')
update({ sessionId = 's1', turnId = 't2', kind = 'approval', approvalId = 'ap-1', status = 'asked', command = 'rm -rf build', reason = 'recursive delete' })
step('t2 approval asked')
update({ sessionId = 's1', turnId = 't2', kind = 'approval', approvalId = 'ap-1', status = 'denied', command = 'rm -rf build', reason = 'recursive delete' })
step('t2 approval denied')
progress('p2', { kind = 'report', message = 'thinking' })
progress('p2', { kind = 'end', message = 'cancelled' })
step('t2 progress end before its updates')
tool('s1', 't2', 'b', 'cancelled', 'Run `sleep 9`')
step('t2 cancelled')
update({ sessionId = 's1', turnId = 't2', kind = 'turnEnd', stopReason = 'cancelled' })
step('t2 turnEnd')

-- Turn 3, a new session from the chat: the placeholder holds until the
-- updates name the turn, and the chat ends it before its turnEnd arrives.
status.turn_started(c.id, nil)
step('t3 started')
tool('s3', 't3', 'd', 'pending', 'Run `ls`')
status.turn_named(c.id)
step('t3 first update is a pending tool')
update({ sessionId = 's3', turnId = 't3', kind = 'subagent', childSessionId = 'child', goal = 'look around', status = 'started' })
step('t3 subagent started')
status.turn_done(c.id, 's3', 't3')
step('t3 done by the chat')
update({ sessionId = 's3', turnId = 't3', kind = 'text', delta = 'late' })
update({ sessionId = 's3', turnId = 't3', kind = 'turnEnd', stopReason = 'end_turn' })
step('t3 late updates')

-- Two sessions at once: the latest change shows; each ends on its own.
tool('s4', 't4', 'e', 'running', 'Run `cargo build`')
update({ sessionId = 's5', turnId = 't5', kind = 'approval', approvalId = 'ap-2', status = 'asked', command = 'rm -rf dist', reason = 'recursive delete' })
step('t4 and t5')
update({ sessionId = 's5', turnId = 't5', kind = 'turnEnd', stopReason = 'cancelled' })
step('t5 turnEnd')
update({ sessionId = 's4', turnId = 't4', kind = 'turnEnd', stopReason = 'end_turn' })
step('t4 turnEnd')
H.result.busy_after = status.busy()

-- The statusline was told about the last change.
H.result.fired = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'TetherStatus',
  callback = function()
    table.insert(H.result.fired, require('tether').status())
  end,
})
tool('s6', 't6', 'f', 'running', 'Run `true`')
update({ sessionId = 's6', turnId = 't6', kind = 'turnEnd', stopReason = 'end_turn' })
tool('s7', 't7', 'g', 'running', 'Run `false`')
H.wait(5000, function()
  return H.result.fired[#H.result.fired] == 'Tether: Run `false`'
end, 'User TetherStatus for the last change')
update({ sessionId = 's7', turnId = 't7', kind = 'turnEnd', stopReason = 'end_turn' })
H.wait(5000, function()
  return H.result.fired[#H.result.fired] == ''
end, 'User TetherStatus for the end')
H.done()
