--- The chat buffer: prompts under "## You", replies streamed under
--- "## Tether", tool calls, approvals and subagents as one compact line each
--- (updated in place as their status changes).
---
--- One chat at a time, bound to one session. While a turn runs the buffer is
--- read-only; when it ends a new "## You" section waits for the next prompt.
local config = require('tether.config')
local client = require('tether.client')
local status = require('tether.status')

local api = vim.api
local M = {}

local ns = api.nvim_create_namespace('tether.chat')

--- @class tether.Turn
--- @field client_id integer|nil
--- @field request_id integer|nil
--- @field turn_id string|nil
--- @field stop string|nil
--- @field error string|nil
--- @field text string|nil      the reply text from the result
--- @field streamed string|nil  the text the updates brought
--- @field end_seen boolean
--- @field result_seen boolean
--- @field finalized boolean
--- @field draft string[]|nil   what the person had typed, restored afterwards

local S = {
  --- @type integer|nil
  buf = nil,
  --- @type string|nil
  session_id = nil,
  --- @type tether.Turn|nil
  turn = nil,
  --- key → extmark id of a compact line
  marks = {},
  --- the last thing written was a compact line
  after_block = false,
}

local YOU = '## You'
local TETHER = '## Tether'

local function valid_buf()
  return S.buf ~= nil and api.nvim_buf_is_valid(S.buf)
end

local function fire(pattern, data)
  api.nvim_exec_autocmds('User', { pattern = pattern, modeline = false, data = data })
end

--- Runs `fn(buf)` with the buffer modifiable, keeping windows that showed its
--- end scrolled to the end.
local function edit(fn)
  local buf = S.buf
  if not valid_buf() then
    return
  end
  local before = api.nvim_buf_line_count(buf)
  local follow = {}
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    if api.nvim_win_get_cursor(win)[1] >= before then
      table.insert(follow, win)
    end
  end
  local was = vim.bo[buf].modifiable
  vim.bo[buf].modifiable = true
  local ok, err = pcall(fn, buf)
  vim.bo[buf].modifiable = was
  vim.bo[buf].modified = false
  local last = api.nvim_buf_line_count(buf)
  for _, win in ipairs(follow) do
    if api.nvim_win_is_valid(win) then
      pcall(api.nvim_win_set_cursor, win, { last, 0 })
    end
  end
  if not ok then
    error(err, 0)
  end
end

local function last_line(buf)
  local n = api.nvim_buf_line_count(buf)
  return n - 1, api.nvim_buf_get_lines(buf, n - 1, n, false)[1] or ''
end

local function append_lines(buf, lines)
  local row, line = last_line(buf)
  if row == 0 and line == '' and api.nvim_buf_line_count(buf) == 1 then
    api.nvim_buf_set_lines(buf, 0, 1, false, lines)
  else
    api.nvim_buf_set_lines(buf, -1, -1, false, lines)
  end
end

--- Streams text onto the end of the buffer.
local function write_text(delta)
  edit(function(buf)
    if S.after_block then
      api.nvim_buf_set_lines(buf, -1, -1, false, { '', '' })
      S.after_block = false
    end
    local row, line = last_line(buf)
    api.nvim_buf_set_text(buf, row, #line, row, #line, vim.split(delta, '\n', { plain = true }))
  end)
end

--- Writes or rewrites the compact line known by `key`.
local function write_block(key, text)
  text = text:gsub('[\r\n]+', ' ')
  edit(function(buf)
    local id = S.marks[key]
    if id then
      local pos = api.nvim_buf_get_extmark_by_id(buf, ns, id, {})
      if pos and pos[1] then
        -- Replace the text only, not the line: a whole-line replace would
        -- drag the next line's mark onto this one.
        local row = pos[1]
        local old = api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ''
        api.nvim_buf_set_text(buf, row, 0, row, #old, { text })
        return
      end
    end
    local row, line = last_line(buf)
    if line == '' then
      api.nvim_buf_set_text(buf, row, 0, row, 0, { text })
    elseif S.after_block then
      api.nvim_buf_set_lines(buf, -1, -1, false, { text })
    else
      api.nvim_buf_set_lines(buf, -1, -1, false, { '', text })
    end
    -- Left gravity: rewriting the line keeps the mark on it.
    S.marks[key] =
      api.nvim_buf_set_extmark(buf, ns, api.nvim_buf_line_count(buf) - 1, 0, { right_gravity = false })
    S.after_block = true
  end)
end

local function first_line(s)
  s = vim.trim(tostring(s or ''))
  return (s:match('^[^\n]*') or '')
end

local function shorten(s, max)
  s = first_line(s)
  if #s > max then
    return s:sub(1, max - 1) .. '…'
  end
  return s
end

local function who(agent)
  return agent and agent ~= vim.NIL and ('[' .. agent .. '] ') or ''
end

--- The compact line for an update, and the key it is updated under.
--- @return string|nil key, string|nil text
function M.compact(u)
  if u.kind == 'toolCall' then
    local line = ('> ⚙ %s%s · %s'):format(who(u.agent), shorten(u.title or u.tool, 100), u.status)
    if (u.status == 'failed' or u.status == 'denied') and type(u.output) == 'string' then
      line = line .. ' — ' .. shorten(u.output, 100)
    end
    return 'tool:' .. tostring(u.toolCallId), line
  elseif u.kind == 'approval' then
    local line = ('> ⚠ %sapproval: %s · %s'):format(who(u.agent), shorten(u.command or '', 100), u.status)
    if u.status ~= 'asked' and u.status ~= 'allowed' and u.reason then
      line = line .. ' — ' .. shorten(u.reason, 100)
    end
    return 'approval:' .. tostring(u.approvalId), line
  elseif u.kind == 'subagent' then
    local line = ('> ↳ subagent: %s · %s'):format(shorten(u.goal, 80), u.status)
    if type(u.summary) == 'string' and u.summary ~= '' then
      line = line .. ' — ' .. shorten(u.summary, 100)
    end
    return 'subagent:' .. tostring(u.childSessionId), line
  elseif u.kind == 'plan' then
    local entries = type(u.entries) == 'table' and u.entries or {}
    local done, now = 0, nil
    for _, e in ipairs(entries) do
      if e.status == 'completed' or e.status == 'done' then
        done = done + 1
      elseif not now and (e.status == 'in_progress' or e.status == 'running') then
        now = e.content
      end
    end
    local line = ('> ☰ plan: %d/%d done'):format(done, #entries)
    if now then
      line = line .. ' — now: ' .. shorten(now, 80)
    end
    return 'plan:' .. tostring(u.turnId), line
  elseif u.kind == 'compaction' then
    local line = ('> ⇲ context compacted: ~%s → ~%s tokens of %s'):format(
      tostring(u.tokensBefore), tostring(u.tokensAfter), tostring(u.window))
    return 'compaction:' .. tostring(u.turnId) .. ':' .. tostring(u.tokensBefore), line
  end
end

--- The chat buffer (created on first use).
--- @return integer
function M.buf()
  if valid_buf() then
    return S.buf
  end
  local buf = api.nvim_create_buf(false, true)
  pcall(api.nvim_buf_set_name, buf, 'tether://chat')
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = 'markdown'
  api.nvim_buf_set_lines(buf, 0, -1, false, { YOU, '' })
  vim.bo[buf].modified = false
  S.buf = buf
  S.marks = {}
  S.after_block = false

  local keys = config.options.chat.keys
  local function map(mode, lhs, fn, desc)
    if lhs then
      vim.keymap.set(mode, lhs, fn, { buffer = buf, desc = desc, nowait = true })
    end
  end
  map('n', keys.send, function()
    M.send_from_buffer()
  end, 'Tether: send the prompt below the last "## You"')
  map('i', keys.send_insert, function()
    vim.cmd.stopinsert()
    vim.schedule(M.send_from_buffer)
  end, 'Tether: send the prompt below the last "## You"')
  map('n', keys.cancel, function()
    M.cancel()
  end, 'Tether: cancel the running turn')
  map('n', keys.close, function()
    M.close()
  end, 'Tether: close the chat window')
  return buf
end

--- Shows the chat buffer; `focus` moves the cursor into it.
--- @param focus boolean|nil
--- @return integer win
function M.open(focus)
  local buf = M.buf()
  local win
  for _, w in ipairs(api.nvim_tabpage_list_wins(0)) do
    if api.nvim_win_get_buf(w) == buf then
      win = w
      break
    end
  end
  if not win then
    local prev = api.nvim_get_current_win()
    local o = config.options.chat
    local pos = o.position
    if pos == 'current' then
      api.nvim_win_set_buf(0, buf)
    elseif pos == 'tab' then
      vim.cmd('tab sbuffer ' .. buf)
    else
      local vertical = pos == 'right' or pos == 'left'
      local total = vertical and vim.o.columns or vim.o.lines
      local size = o.size < 1 and math.floor(total * o.size) or o.size
      local where = (pos == 'left' or pos == 'top') and 'topleft' or 'botright'
      vim.cmd(('%s %d%s'):format(where, math.max(size, 10), vertical and 'vsplit' or 'split'))
      api.nvim_win_set_buf(0, buf)
    end
    win = api.nvim_get_current_win()
    vim.wo[win].wrap = true
    vim.wo[win].linebreak = true
    vim.wo[win].number = false
    vim.wo[win].relativenumber = false
    vim.wo[win].signcolumn = 'no'
    pcall(api.nvim_win_set_cursor, win, { api.nvim_buf_line_count(buf), 0 })
    if not focus and pos ~= 'current' and api.nvim_win_is_valid(prev) then
      api.nvim_set_current_win(prev)
    end
  elseif focus then
    api.nvim_set_current_win(win)
  end
  return win
end

--- Closes the chat windows (the buffer and its session stay).
function M.close()
  if not valid_buf() then
    return
  end
  for _, win in ipairs(vim.fn.win_findbuf(S.buf)) do
    if #api.nvim_list_wins() > 1 then
      pcall(api.nvim_win_close, win, false)
    end
  end
end

--- Line number (1-based) of the last "## You" header, or nil.
local function last_you(lines)
  for i = #lines, 1, -1 do
    if lines[i]:match('^## You%s*$') then
      return i
    end
    if lines[i]:match('^## Tether%s*$') then
      return nil
    end
  end
end

local function trim_lines(lines)
  local s = vim.trim(table.concat(lines, '\n'))
  return s == '' and {} or vim.split(s, '\n', { plain = true })
end

local function rel(uri)
  local ok, path = pcall(vim.uri_to_fname, uri)
  return ok and vim.fn.fnamemodify(path, ':~:.') or uri
end

local function context_line(ctx)
  local parts = {}
  for _, c in ipairs(ctx or {}) do
    local s = rel(c.uri)
    if c.range then
      local e = c.range['end']
      -- An end at column 0 stops before that line.
      local last = e.line + (e.character > 0 and 1 or 0)
      s = ('%s:%d-%d'):format(s, c.range.start.line + 1, math.max(last, c.range.start.line + 1))
    end
    table.insert(parts, s)
  end
  return #parts > 0 and ('> context: ' .. table.concat(parts, ', ')) or nil
end

local finalize

--- Starts a turn. `text` is written under the last "## You" unless
--- `in_buffer` says it is already there.
--- @param text string
--- @param context table[]|nil  [{uri, range?}]
--- @param in_buffer boolean|nil
--- @return boolean started
local function start(text, context, in_buffer)
  if S.turn then
    vim.notify('Tether is still working on the last prompt (:TetherCancel stops it).', vim.log.levels.WARN)
    return false
  end
  text = vim.trim(text or '')
  if text == '' then
    vim.notify('Tether: the prompt is empty.', vim.log.levels.WARN)
    return false
  end
  M.buf()
  if config.options.chat.open_on_prompt then
    M.open(false)
  end
  --- @type tether.Turn
  local turn = { end_seen = false, result_seen = false, finalized = false }
  edit(function(buf)
    local lines = api.nvim_buf_get_lines(buf, 0, -1, false)
    local hdr = last_you(lines)
    local prompt = vim.split(text, '\n', { plain = true })
    local ctx = context_line(context)
    if ctx then
      table.insert(prompt, '')
      table.insert(prompt, ctx)
    end
    if hdr then
      if not in_buffer then
        local draft = trim_lines(vim.list_slice(lines, hdr + 1))
        if #draft > 0 and table.concat(draft, '\n') ~= text then
          turn.draft = draft
        end
      end
      api.nvim_buf_set_lines(buf, hdr, -1, false, prompt)
    else
      append_lines(buf, vim.list_extend({ '', YOU }, prompt))
    end
    api.nvim_buf_set_lines(buf, -1, -1, false, { '', TETHER, '' })
  end)
  -- Read-only while the turn runs; the plugin's own writes go through edit().
  vim.bo[S.buf].modifiable = false
  S.after_block = false
  S.turn = turn

  local params = { text = text, sessionId = S.session_id }
  if context and #context > 0 then
    params.context = context
  end
  client.request({
    method = 'tether/prompt',
    params = params,
    on_sent = function(c, id)
      turn.client_id = c.id
      turn.request_id = id
      status.turn_started(c.id, S.session_id)
    end,
    on_result = function(err, result)
      if S.turn ~= turn then
        return
      end
      turn.result_seen = true
      if err then
        if err.code == -32800 then
          turn.stop = 'cancelled'
        else
          turn.stop = 'error'
          turn.error = err.message or vim.inspect(err)
          if S.session_id and tostring(turn.error):find('no session ' .. S.session_id, 1, true) then
            -- Gone from the store (deleted, another data dir): start afresh.
            S.session_id = nil
          end
        end
      elseif type(result) == 'table' then
        S.session_id = result.sessionId or S.session_id
        turn.stop = result.stopReason
        turn.error = result.error ~= vim.NIL and result.error or nil
        turn.text = result.text
      end
      if turn.stop == 'error' and not (turn.error and client.recently_shown(turn.error)) then
        vim.notify('Tether: ' .. (turn.error or 'the turn failed'), vim.log.levels.ERROR)
      end
      if turn.end_seen or (err and err.code ~= -32800) then
        finalize(turn)
      else
        -- The result and the last updates travel separately; give the
        -- turnEnd update a moment to arrive.
        vim.defer_fn(function()
          finalize(turn)
        end, 1000)
      end
    end,
  })
  return true
end

finalize = function(turn)
  if turn.finalized or S.turn ~= turn then
    return
  end
  turn.finalized = true
  -- Text the updates have not brought (they arrived too late, or not at all)
  -- comes from the result.
  if type(turn.text) == 'string' and turn.text ~= '' then
    local streamed = turn.streamed or ''
    if turn.text:sub(1, #streamed) == streamed and #turn.text > #streamed then
      write_text(turn.text:sub(#streamed + 1))
    end
  end
  local stop = turn.stop
  if stop == 'cancelled' then
    write_block('end:' .. tostring(turn.turn_id), '> ⊘ cancelled')
  elseif stop == 'max_iterations' then
    write_block('end:' .. tostring(turn.turn_id), '> ⊘ stopped: the step limit (maxIterations) was reached')
  elseif stop == 'error' then
    write_block('end:' .. tostring(turn.turn_id), '> ✗ error: ' .. first_line(turn.error or 'unknown'))
  end
  S.turn = nil
  edit(function(buf)
    api.nvim_buf_set_lines(buf, -1, -1, false, vim.list_extend({ '', YOU }, turn.draft or { '' }))
  end)
  if valid_buf() then
    vim.bo[S.buf].modifiable = true
  end
  S.after_block = false
  if turn.client_id then
    status.turn_done(turn.client_id, S.session_id, turn.turn_id)
  end
  fire('TetherTurnEnd', {
    sessionId = S.session_id,
    turnId = turn.turn_id,
    stopReason = stop,
    error = turn.error,
  })
end

--- Sends `text` as a prompt in the chat's session.
--- @param text string
--- @param context table[]|nil
--- @return boolean started
function M.send(text, context)
  return start(text, context, false)
end

--- Sends what is written below the last "## You" line.
--- @return boolean started
function M.send_from_buffer()
  if S.turn then
    vim.notify('Tether is still working on the last prompt (:TetherCancel stops it).', vim.log.levels.WARN)
    return false
  end
  local lines = api.nvim_buf_get_lines(M.buf(), 0, -1, false)
  local hdr = last_you(lines)
  local has_reply = false
  for _, l in ipairs(lines) do
    if l:match('^## Tether%s*$') then
      has_reply = true
    end
  end
  if not hdr and has_reply then
    vim.notify('Tether: write your prompt below a "## You" line at the end.', vim.log.levels.WARN)
    return false
  end
  local text = table.concat(trim_lines(vim.list_slice(lines, (hdr or 0) + 1)), '\n')
  if not hdr then
    -- A fresh buffer whose header was deleted: the whole buffer is the prompt.
    edit(function(buf)
      api.nvim_buf_set_lines(buf, 0, 0, false, { YOU })
    end)
  end
  return start(text, nil, true)
end

--- Routes a `tether/update` of this chat's running turn into the buffer.
--- @param u table
--- @param client_id integer
function M.on_update(u, client_id)
  local t = S.turn
  if not t or t.client_id ~= client_id or not valid_buf() then
    return
  end
  if t.turn_id then
    if u.turnId ~= t.turn_id then
      return
    end
  elseif S.session_id and u.sessionId ~= S.session_id then
    return
  else
    -- The first update of this turn: it names the turn (and a new session).
    t.turn_id = u.turnId
    S.session_id = S.session_id or u.sessionId
    status.turn_named(client_id)
  end
  if u.kind == 'text' then
    if type(u.delta) == 'string' and u.delta ~= '' then
      t.streamed = (t.streamed or '') .. u.delta
      write_text(u.delta)
    end
  elseif u.kind == 'turnEnd' then
    t.end_seen = true
    t.stop = t.stop or u.stopReason
    if t.result_seen then
      finalize(t)
    end
  else
    local key, line = M.compact(u)
    if key then
      write_block(key, line)
    end
  end
end

--- Ends the running turn of a client that went away.
function M.on_client_exit(client_id, code, signal)
  local t = S.turn
  if t and t.client_id == client_id then
    t.stop = 'error'
    t.error = ('the Tether server stopped (exit code %s, signal %s); see :LspLog'):format(
      tostring(code),
      tostring(signal)
    )
    vim.notify('Tether: ' .. t.error, vim.log.levels.ERROR)
    finalize(t)
  end
end

--- Cancels the chat's running turn.
--- @return boolean cancelling
function M.cancel()
  local t = S.turn
  if not t then
    vim.notify('Tether: nothing is running.', vim.log.levels.INFO)
    return false
  end
  local c = t.client_id and vim.lsp.get_client_by_id(t.client_id)
  if not c then
    -- Not sent yet (the server is starting): give up on it here.
    t.stop = 'cancelled'
    finalize(t)
    return true
  end
  if S.session_id then
    client.notify(c, 'tether/cancel', { sessionId = S.session_id })
  elseif t.request_id then
    client.call(c, 'cancel_request', t.request_id)
  end
  return true
end

--- Starts a new session: the next prompt does not continue the current one.
function M.new_session()
  if S.turn then
    vim.notify('Tether is still working on the last prompt (:TetherCancel stops it).', vim.log.levels.WARN)
    return false
  end
  S.session_id = nil
  S.marks = {}
  S.after_block = false
  edit(function(buf)
    api.nvim_buf_clear_namespace(buf, ns, 0, -1)
    api.nvim_buf_set_lines(buf, 0, -1, false, { YOU, '' })
  end)
  return true
end

local function tool_names(calls)
  local names = {}
  if type(calls) ~= 'table' then
    return names
  end
  for _, c in ipairs(calls) do
    if type(c) == 'table' then
      local f = type(c['function']) == 'table' and c['function'] or c
      table.insert(names, f.name or c.tool or '?')
    end
  end
  return names
end

--- Renders a stored session into the chat buffer and continues it.
--- @param session { id: string, title?: string }
--- @param on_done fun(ok: boolean)|nil
function M.load_session(session, on_done)
  if S.turn then
    vim.notify('Tether is still working on the last prompt (:TetherCancel stops it).', vim.log.levels.WARN)
    return
  end
  client.request({
    method = 'tether/history',
    params = { sessionId = session.id },
    on_result = function(err, result)
      if err or type(result) ~= 'table' then
        vim.notify(
          'Tether: could not load session ' .. session.id .. ': ' .. (err and err.message or 'no result'),
          vim.log.levels.ERROR
        )
        if on_done then
          on_done(false)
        end
        return
      end
      local lines = {}
      for _, m in ipairs(result.messages or {}) do
        local text = type(m.text) == 'string' and m.text or ''
        if m.role == 'user' then
          vim.list_extend(lines, { YOU })
          vim.list_extend(lines, vim.split(text, '\n', { plain = true }))
          table.insert(lines, '')
        elseif m.role == 'assistant' then
          vim.list_extend(lines, { TETHER })
          if vim.trim(text) ~= '' then
            vim.list_extend(lines, vim.split(text, '\n', { plain = true }))
          end
          for _, name in ipairs(tool_names(m.toolCalls)) do
            table.insert(lines, '> ⚙ ' .. name)
          end
          table.insert(lines, '')
        end
      end
      vim.list_extend(lines, { YOU, '' })
      M.buf()
      S.session_id = session.id
      S.marks = {}
      S.after_block = false
      edit(function(buf)
        api.nvim_buf_clear_namespace(buf, ns, 0, -1)
        api.nvim_buf_set_lines(buf, 0, -1, false, lines)
      end)
      local win = M.open(true)
      pcall(api.nvim_win_set_cursor, win, { api.nvim_buf_line_count(S.buf), 0 })
      fire('TetherSessionLoaded', { sessionId = session.id })
      if on_done then
        on_done(true)
      end
    end,
  })
end

--- The chat's state, for statuslines and tests.
--- @return { buf: integer|nil, session_id: string|nil, running: boolean, turn_id: string|nil }
function M.state()
  return {
    buf = valid_buf() and S.buf or nil,
    session_id = S.session_id,
    running = S.turn ~= nil,
    turn_id = S.turn and S.turn.turn_id or nil,
  }
end

return M
