-- :TetherCancel during a long command ends the turn at once, and the
-- statusline says what the chat says: the command while it runs, nothing once
-- the turn has ended, whichever way the server's work-done progress and its
-- updates interleave.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()

local function status()
  return require('tether').status()
end

-- The statusline a person would have, and what it showed each time the
-- plugin asked for a redraw.
vim.o.laststatus = 2
vim.o.statusline = "%{v:lua.require'tether'.status()}"
H.result.shown = {}
vim.api.nvim_create_autocmd('User', {
  pattern = 'TetherStatus',
  callback = function()
    table.insert(H.result.shown, vim.api.nvim_eval_statusline(vim.o.statusline, {}).str)
  end,
})

-- The server's own work-done progress, as it arrives.
H.result.progress = {}
vim.api.nvim_create_autocmd('LspProgress', {
  callback = function(a)
    local v = a.data.params.value
    table.insert(H.result.progress, { kind = v.kind, message = v.message })
  end,
})
local function progress_seen(pred)
  for _, p in ipairs(H.result.progress) do
    if pred(p) then
      return true
    end
  end
  return false
end

-- The status at the moment the chat shows the command running, and at the
-- moment the chat says the turn ended.
local chat = require('tether.chat')
local on_update = chat.on_update
chat.on_update = function(u, id)
  on_update(u, id)
  if u.kind == 'toolCall' and u.status == 'running' then
    H.result.status_when_shown_running = status()
  end
end
vim.api.nvim_create_autocmd('User', {
  pattern = 'TetherTurnEnd',
  callback = function()
    H.result.status_at_turn_end = status()
  end,
})

H.edit('README.md')
vim.cmd('Tether wait a while')
H.wait(20000, function()
  for _, l in ipairs(H.chat_lines()) do
    if l:match('^> ⚙ .*· running$') then
      return true
    end
  end
end, 'the command to run')
-- Both streams have told about the command (in either order).
H.wait(10000, function()
  return progress_seen(function(p)
    return p.kind == 'report' and type(p.message) == 'string' and p.message:find('sleep', 1, true) ~= nil
  end)
end, 'the progress report of the running command')
H.result.status_running = status()
-- The statusline was redrawn showing it.
H.wait(5000, function()
  return vim.tbl_contains(H.result.shown, H.result.status_running)
end, 'the statusline to show the running command')

local t0 = vim.uv.hrtime()
vim.cmd('TetherCancel')
H.wait(10000, function()
  return #H.result.turns == 1
end, 'the turn to end after :TetherCancel')
H.result.cancel_ms = (vim.uv.hrtime() - t0) / 1e6
-- The turn's progress ends too, maybe after the chat did: it leaves nothing.
H.wait(10000, function()
  return progress_seen(function(p)
    return p.kind == 'end'
  end)
end, 'the progress of the turn to end')
H.result.status_after = status()
H.wait(5000, function()
  return H.result.shown[#H.result.shown] == ''
end, 'the statusline to be cleared')
H.done()
