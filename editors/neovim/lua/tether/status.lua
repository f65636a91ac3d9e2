--- What Tether is doing, for the statusline: standard LSP work-done progress
--- (the LspProgress event) of Tether clients, and, while a turn runs without
--- progress, what its `tether/update` notifications say.
---
--- Every change fires `User TetherStatus` and redraws the statuslines.
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
--- @type table<string, {client_id: integer, label: string, seq: integer}>
local turns = {}

local redraw_pending = false
local function changed()
  if redraw_pending then
    return
  end
  redraw_pending = true
  vim.schedule(function()
    redraw_pending = false
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
      e.title = v.title or e.title
      e.message = v.message or e.message
      e.percentage = v.percentage or e.percentage
      e.seq = next_seq()
      per[p.token] = e
    end
    changed()
  end,
})

--- Follows a turn through its updates (the fallback when no progress runs).
--- @param u table tether/update params
--- @param client_id integer
function M.on_update(u, client_id)
  local key = client_id .. ':' .. tostring(u.sessionId)
  -- A turn started before its session was known now has one.
  turns[client_id .. ':nil'] = nil
  if u.kind == 'turnEnd' then
    turns[key] = nil
    changed()
    return
  end
  local label
  if u.kind == 'toolCall' then
    if u.status == 'running' then
      label = u.title or u.tool
    elseif u.status ~= 'pending' then
      label = 'thinking'
    end
  elseif u.kind == 'approval' then
    label = u.status == 'asked' and 'waiting for approval' or 'thinking'
  elseif u.kind == 'subagent' then
    label = u.status == 'running' and ('subagent: ' .. (u.goal or '')) or 'thinking'
  elseif u.kind == 'text' then
    local t = turns[key]
    label = t and t.label or 'thinking'
  else
    local t = turns[key]
    label = t and t.label or 'thinking'
  end
  if label then
    local t = turns[key]
    if not t or t.label ~= label then
      turns[key] = { client_id = client_id, label = label, seq = next_seq() }
      changed()
    end
  end
end

--- Marks a turn as over (its request ended without a turnEnd update).
--- @param client_id integer
--- @param session_id string|nil
function M.turn_done(client_id, session_id)
  local key = client_id .. ':' .. tostring(session_id)
  if turns[key] then
    turns[key] = nil
    changed()
  end
end

--- Marks a turn as started before its first update arrives.
--- @param client_id integer
--- @param session_id string|nil
function M.turn_started(client_id, session_id)
  turns[client_id .. ':' .. tostring(session_id)] =
    { client_id = client_id, label = 'thinking', seq = next_seq() }
  changed()
end

--- @param client_id integer
function M.on_client_exit(client_id)
  progress[client_id] = nil
  for k, t in pairs(turns) do
    if t.client_id == client_id then
      turns[k] = nil
    end
  end
  changed()
end

--- Whether any Tether work is in progress.
--- @return boolean
function M.busy()
  for _, per in pairs(progress) do
    if next(per) then
      return true
    end
  end
  return next(turns) ~= nil
end

--- One line for the statusline: "" when Tether is idle.
--- @return string
function M.status()
  local best
  for _, per in pairs(progress) do
    for _, e in pairs(per) do
      if not best or e.seq > best.seq then
        best = e
      end
    end
  end
  if best then
    local s = best.title or 'working'
    if best.message and best.message ~= '' then
      s = s .. ': ' .. best.message
    end
    if best.percentage then
      s = s .. (' (%d%%)'):format(best.percentage)
    end
    return 'Tether: ' .. s
  end
  local latest
  for _, t in pairs(turns) do
    if not latest or t.seq > latest.seq then
      latest = t
    end
  end
  if latest then
    return 'Tether: ' .. latest.label
  end
  return ''
end

return M
