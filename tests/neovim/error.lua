-- A turn that fails shows the error in the chat and tells the person once
-- (the server's own window/showMessage, or vim.notify when it sent none).
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.result.shown = {}
local show = vim.lsp.handlers['window/showMessage']
vim.lsp.handlers['window/showMessage'] = function(err, params, ctx, cfg)
  table.insert(H.result.shown, params.message)
  return show(err, params, ctx, cfg)
end
H.setup()
H.watch_turns()
H.edit('README.md')
vim.cmd('Tether hello')
H.wait(30000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.done()
