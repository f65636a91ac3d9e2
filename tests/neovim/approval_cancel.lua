-- :TetherCancel while the approval picker is open: the turn ends, the person
-- is told the open question no longer counts, and answering it late harms
-- nothing.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()
local pending_choice
vim.ui.select = function(items, opts, on_choice)
  table.insert(H.result.selects, { prompt = opts.prompt, kind = opts.kind })
  pending_choice = function()
    on_choice(H.item(items, 'Allow once'))
  end
end

H.edit('README.md')
vim.cmd('Tether clean the build')
H.wait(20000, function()
  return pending_choice ~= nil
end, 'the approval picker')
vim.cmd('TetherCancel')
H.wait(10000, function()
  return #H.result.turns == 1
end, 'the turn to end')
-- The server has denied the question; wait for the plugin to hear of it.
H.wait(10000, function()
  for _, n in ipairs(H.result.notifications) do
    if n.msg:find('no longer', 1, true) or n.msg:find('ignored', 1, true) then
      return true
    end
  end
end, 'the person to be told')
pending_choice()
H.wait(5000, function()
  local open, waiting = require('tether.approval').pending()
  return open == 0 and waiting == 0
end, 'the approval queue to empty')
H.done()
