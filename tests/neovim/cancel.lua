-- :TetherCancel during a long command ends the turn at once.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()

H.edit('README.md')
vim.cmd('Tether wait a while')
H.wait(20000, function()
  for _, l in ipairs(H.chat_lines()) do
    if l:match('^> ⚙ .*· running$') then
      return true
    end
  end
end, 'the command to run')
H.result.status_running = require('tether').status()
local t0 = vim.uv.hrtime()
vim.cmd('TetherCancel')
H.wait(10000, function()
  return #H.result.turns == 1
end, 'the turn to end after :TetherCancel')
H.result.cancel_ms = (vim.uv.hrtime() - t0) / 1e6
H.result.status_after = require('tether').status()
H.done()
