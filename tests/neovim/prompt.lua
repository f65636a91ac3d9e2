-- A prompt from :Tether streams the model's reply into the chat buffer.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()

-- Snapshots of the reply as each text update lands: streaming means the
-- buffer showed partial replies before the turn ended.
local chat = require('tether.chat')
local on_update = chat.on_update
H.result.snapshots = {}
H.result.statuses = {}
chat.on_update = function(u, id)
  on_update(u, id)
  if u.kind == 'text' then
    table.insert(H.result.snapshots, H.reply_text())
    table.insert(H.result.statuses, require('tether').status())
  end
end

H.edit('README.md')
vim.cmd('Tether say hello')
H.result.chat_visible = #vim.fn.win_findbuf(chat.state().buf) > 0
H.result.focus_stayed = vim.api.nvim_buf_get_name(0):match('README%.md$') ~= nil
H.wait(20000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.result.status_after = require('tether').status()
H.result.session_id = chat.state().session_id
H.done()
