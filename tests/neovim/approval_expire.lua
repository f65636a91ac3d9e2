-- An approval nobody answers expires: the server withdraws its dialog with
-- `$/cancelRequest`. What does Neovim itself do with that? The scenario
-- records whether Neovim has a handler of its own for it, spies on its
-- arrival, and checks what is still open when it arrives.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.result.builtin_cancel_handler = vim.lsp.handlers['$/cancelRequest'] ~= nil
H.result.cancels = {}
vim.lsp.handlers['$/cancelRequest'] = function(_, params)
  local open, waiting = require('tether.approval').pending()
  table.insert(H.result.cancels, { id = params.id, open = open, waiting = waiting })
end
H.setup({ init_options = { approval = { timeoutSecs = 1 } } })
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
H.wait(20000, function()
  return #H.result.cancels == 1
end, 'the $/cancelRequest')
-- The person answers late: the answer goes out and counts for nothing.
pending_choice()
H.wait(20000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.wait(5000, function()
  local open, waiting = require('tether.approval').pending()
  return open == 0 and waiting == 0
end, 'the approval queue to empty')
H.done()
