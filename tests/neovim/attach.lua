-- Tether attaches to every filetype (one client per workspace), not to
-- scratch buffers; status() follows standard LSP progress.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()

local clients = {}
for _, path in ipairs({ 'README.md', 'src/lib.rs', 'Cargo.toml' }) do
  local buf = H.edit(path)
  local c = vim.lsp.get_clients({ name = 'tether', bufnr = buf })[1]
  table.insert(clients, { path = path, filetype = vim.bo[buf].filetype, client = c.id })
end
H.result.attached = clients
local c = vim.lsp.get_clients({ name = 'tether' })
H.result.client_count = #c
H.result.root_dir = c[1].root_dir
H.result.init_options = c[1].config.init_options

vim.cmd('enew')
vim.bo.buftype = 'nofile'
vim.bo.filetype = 'markdown'
H.result.scratch_clients = #vim.lsp.get_clients({ bufnr = 0 })

-- Standard work-done progress (as the server will send) drives status().
local function progress(value)
  vim.api.nvim_exec_autocmds('LspProgress', {
    pattern = value.kind,
    modeline = false,
    data = { client_id = c[1].id, params = { token = 'turn-1', value = value } },
  })
end
H.result.status_idle = require('tether').status()
progress({ kind = 'begin', title = 'thinking' })
H.result.status_begin = require('tether').status()
progress({ kind = 'report', title = 'thinking', message = 'running `cargo test`', percentage = 40 })
H.result.status_report = require('tether').status()
progress({ kind = 'end', title = 'thinking' })
H.result.status_end = require('tether').status()
H.done()
