--- What Tether is doing, for the statusline.
---
--- A Tether server tells the editor about every turn twice: `tether/update`
--- notifications (what the chat renders) and standard work-done progress
--- (`$/progress`, for generic progress UIs). The two come from different
--- tasks of the server, so progress may arrive before or after the updates it
--- describes, and a turn's progress `end` may come after the turn's `turnEnd`
--- update; progress also names no session or turn, so it cannot be matched
--- with the turns the updates describe. The status therefore follows one
--- stream per client: a client that sends `tether/update` (or that the chat
--- has started a turn on) is followed by its updates only, in the same order
--- as the chat shows them; progress (the LspProgress event) is shown only for
--- Tether clients that send no updates.
---
--- Every change of `status()` fires `User TetherStatus` and redraws the
--- statuslines.
local M = {}

local seq = 0
local function next_seq()
  seq = seq + 1
  return seq
end

--- @alias tether.Progress {title?: string, message?: string, percentage?: integer, seq: integer}
--- Open progress per client, by token.
--- @type table<integer, table<string|integer, tether.Progress>>
local progress = {}

--- A running turn, as its updates tell it.
--- @class tether.StatusTurn
--- @field client_id integer
--- @field turn_id string|nil  nil until an update names it
--- @field base string         "thinking" or "writing"
--- @field active table<string, {label: string, seq: integer}>  running tools, open approvals, subagents
--- @field seq integer         when it last changed

--- Running turns by "client:session" ("client:nil" for a turn the chat has
--- started before the server named its session).
--- @type table<string, tether.StatusTurn>
local turns = {}

--- Clients whose status comes from their updates.
--- @type table<integer, boolean>
local by_updates = {}

--- Turns known to be over ("client:turnId"): their late updates are ignored.
local ended, ended_order = {}, {}
local function mark_ended(client_id, turn_id)
  if turn_id == nil or turn_id == vim.NIL then
    return
  end
  local k = client_id .. ':' .. tostring(turn_id)
  if not ended[k] then
    ended[k] = true
    table.insert(ended_order, k)
    if #ended_order > 200 then
      ended[table.remove(ended_order, 1)] = nil
    end
  end
end
local function is_ended(client_id, turn_id)
  return turn_id ~= nil and turn_id ~= vim.NIL and ended[client_id .. ':' .. tostring(turn_id)] == true
end

local function key_of(client_id, session_id)
  if session_id == vim.NIL then
    session_id = nil
  end
  return client_id .. ':' .. tostring(session_id)
end

--- The first line of `s`, at most `max` characters.
local function short(s, max)
  s = vim.trim(tostring(s or '')):match('^[^\n]*') or ''
  if vim.fn.strchars(s) > max then
    s = vim.fn.strcharpart(s, 0, max - 1) .. '…'
  end
  return s
end

local function str(v)
  return type(v) == 'string' and v or nil
end

local M_status -- forward: M.status

local redraw_pending = false
local last_fired = ''
local function changed()
  if redraw_pending then
    return
  end
  redraw_pending = true
  vim.schedule(function()
    redraw_pending = false
    local now = M_status()
    if now == last_fired then
      return
    end
    last_fired = now
    pcall(vim.cmd.redrawstatus, { bang = true })
    vim.api.nvim_exec_autocmds('User', { pattern = 'TetherStatus', modeline = false })
  end)
end

local function is_tether(client_id)
  local c = vim.lsp.get_client_by_id(client_id)
  return c ~= nil and c.name == require('tether.client').name
end

vim.api.nvim_create_autocmd('LspProgress', {
  group = vim.api.nvim_create_augroup('tether.status', { clear = true }),
  desc = 'Tether: progress for the statusline',
  callback = function(args)
    local data = args.data or {}
    local p = data.params
    if type(p) ~= 'table' or type(p.value) ~= 'table' or not is_tether(data.client_id) then
      return
    end
    local v = p.value
    local per = progress[data.client_id] or {}
    progress[data.client_id] = per
    if v.kind == 'end' then
      per[p.token] = nil
    else
      local e = per[p.token] or {}
      e.title = str(v.title) or e.title
      e.message = str(v.message) or e.message
      e.percentage = type(v.percentage) == 'number' and v.percentage or e.percentage
      e.seq = next_seq()
      per[p.token] = e
    end
    if not by_updates[data.client_id] then
      changed()
    end
  end,
})

--- The turn of `key`, created when missing.
--- @return tether.StatusTurn
local function turn_at(key, client_id)
  local t = turns[key]
  if not t then
    t = { client_id = client_id, base = 'thinking', active = {}, seq = next_seq() }
    turns[key] = t
  end
  return t
end

--- Follows a turn through its updates.
--- @param u table tether/update params
--- @param client_id integer
function M.on_update(u, client_id)
  by_updates[client_id] = true
  if is_ended(client_id, u.turnId) then
    -- A straggler of a turn that is over.
    return
  end
  local key = key_of(client_id, u.sessionId)
  if u.kind == 'turnEnd' then
    mark_ended(client_id, u.turnId)
    local t = turns[key]
    if t and (t.turn_id == nil or t.turn_id == u.turnId) then
      turns[key] = nil
    end
    changed()
    return
  end
  local t = turns[key]
  if t and t.turn_id and u.turnId and t.turn_id ~= u.turnId then
    -- The session's next turn: the last one ended without a turnEnd we saw.
    mark_ended(client_id, t.turn_id)
    t = nil
    turns[key] = nil
  end
  t = turn_at(key, client_id)
  if u.turnId ~= nil and u.turnId ~= vim.NIL then
    t.turn_id = u.turnId
  end
  local function set(id, label)
    t.active[id] = label and { label = label, seq = next_seq() } or nil
  end
  if u.kind == 'text' then
    t.base = 'writing'
  elseif u.kind == 'toolCall' then
    local id = 'tool:' .. tostring(u.toolCallId)
    if u.status == 'running' then
      set(id, short(str(u.title) or str(u.tool) or 'a tool', 60))
    elseif u.status ~= 'pending' then
      set(id, nil)
      t.base = 'thinking'
    end
  elseif u.kind == 'approval' then
    local id = 'approval:' .. tostring(u.approvalId)
    if u.status == 'asked' then
      set(id, 'waiting for approval')
    else
      set(id, nil)
      t.base = 'thinking'
    end
  elseif u.kind == 'subagent' then
    local id = 'subagent:' .. tostring(u.childSessionId)
    if u.status == 'started' or u.status == 'running' then
      set(id, 'subagent: ' .. short(u.goal, 50))
    else
      set(id, nil)
      t.base = 'thinking'
    end
  end
  t.seq = next_seq()
  changed()
end

--- The chat's turn was named by its first update: its placeholder goes.
--- @param client_id integer
function M.turn_named(client_id)
  if turns[key_of(client_id, nil)] then
    turns[key_of(client_id, nil)] = nil
    changed()
  end
end

--- Marks the chat's turn as over (its request ended; the turnEnd update may
--- not have arrived, or never will).
--- @param client_id integer
--- @param session_id string|nil
--- @param turn_id string|nil
function M.turn_done(client_id, session_id, turn_id)
  mark_ended(client_id, turn_id)
  for _, k in ipairs({ key_of(client_id, nil), key_of(client_id, session_id) }) do
    local t = turns[k]
    if t and (t.turn_id == nil or turn_id == nil or t.turn_id == turn_id) then
      turns[k] = nil
    end
  end
  if turn_id then
    for k, t in pairs(turns) do
      if t.client_id == client_id and t.turn_id == turn_id then
        turns[k] = nil
      end
    end
  end
  changed()
end

--- Marks the chat's turn as started, before any update of it arrives.
--- @param client_id integer
--- @param session_id string|nil
function M.turn_started(client_id, session_id)
  by_updates[client_id] = true
  local key = key_of(client_id, session_id)
  local t = turns[key]
  if t and t.turn_id then
    -- Left over from the session's last turn.
    mark_ended(client_id, t.turn_id)
  end
  turns[key] = { client_id = client_id, base = 'thinking', active = {}, seq = next_seq() }
  changed()
end

--- @param client_id integer
function M.on_client_exit(client_id)
  progress[client_id] = nil
  by_updates[client_id] = nil
  for k, t in pairs(turns) do
    if t.client_id == client_id then
      turns[k] = nil
    end
  end
  changed()
end

--- What a turn is doing: its latest running tool, open approval or
--- subagent, else thinking or writing.
--- @param t tether.StatusTurn
--- @return string
local function turn_label(t)
  local best
  for _, a in pairs(t.active) do
    if not best or a.seq > best.seq then
      best = a
    end
  end
  return best and best.label or t.base
end

--- @param e tether.Progress
--- @return string
local function progress_label(e)
  local parts = {}
  -- The server's title is "Tether": not twice.
  if e.title and e.title ~= '' and e.title:lower() ~= 'tether' then
    table.insert(parts, e.title)
  end
  if e.message and e.message ~= '' then
    table.insert(parts, e.message)
  end
  local s = #parts > 0 and table.concat(parts, ': ') or 'working'
  if e.percentage then
    s = s .. (' (%d%%)'):format(e.percentage)
  end
  return s
end

--- One line for the statusline: "" when Tether is idle.
--- @return string
function M.status()
  local best, label
  for _, t in pairs(turns) do
    if not best or t.seq > best.seq then
      best, label = t, nil
    end
  end
  if best then
    label = turn_label(best)
  end
  for client_id, per in pairs(progress) do
    if not by_updates[client_id] then
      for _, e in pairs(per) do
        if not best or e.seq > best.seq then
          best, label = e, progress_label(e)
        end
      end
    end
  end
  if not best then
    return ''
  end
  return 'Tether: ' .. label
end
M_status = M.status

--- Whether any Tether work is in progress.
--- @return boolean
function M.busy()
  return M.status() ~= ''
end

return M
