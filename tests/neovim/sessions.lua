-- :TetherSessions finds the session of an earlier prompt (full-text search),
-- opens it in the chat, and the send key continues it.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()
H.record_select(function(items, opts)
  if opts.kind == 'tether.session' then
    return items[1]
  end
end)
local loaded = 0
vim.api.nvim_create_autocmd('User', {
  pattern = 'TetherSessionLoaded',
  callback = function()
    loaded = loaded + 1
  end,
})
local chat = require('tether.chat')

H.edit('README.md')
vim.cmd('Tether what is the answer?')
H.wait(20000, function()
  return #H.result.turns == 1
end, 'the first turn to end')
H.result.first_session = chat.state().session_id

vim.cmd('TetherChat!')
H.result.after_new = H.chat_lines()
H.result.session_after_new = chat.state().session_id or vim.NIL

vim.cmd('TetherSessions answer')
H.wait(10000, function()
  return loaded == 1
end, 'the session to load')
H.result.loaded = H.chat_lines()
H.result.loaded_session = chat.state().session_id

-- Type the next prompt under the last "## You" and press the send key.
local buf = chat.state().buf
H.result.chat_is_current = vim.api.nvim_get_current_buf() == buf
vim.api.nvim_buf_set_lines(buf, -2, -1, false, { 'what did I ask?' })
vim.api.nvim_feedkeys(vim.keycode('<CR>'), 'x', false)
H.wait(20000, function()
  return #H.result.turns == 2
end, 'the second turn to end')
H.done()
