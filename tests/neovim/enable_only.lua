-- Without setup(): plain vim.lsp.config + vim.lsp.enable (Neovim 0.11), with
-- the plugin on the runtimepath. Its lsp/tether.lua supplies the handlers, so
-- approvals still go through vim.ui.select.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
vim.opt.rtp:prepend(H.env.plugin)
vim.cmd.runtime('plugin/tether.lua')
vim.lsp.config('tether', {
  cmd = { H.env.bin },
  root_markers = { '.git' },
  init_options = {
    model = 'scripted',
    baseUrl = H.env.base_url,
    dataDir = H.env.data,
    approval = { mode = 'ask' },
  },
})
vim.lsp.enable('tether')
H.watch_turns()
H.record_select(function(items)
  return H.item(items, 'Allow once')
end)

H.edit('README.md')
vim.cmd('Tether clean the build')
H.wait(30000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.done()
