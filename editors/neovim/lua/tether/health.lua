--- :checkhealth tether
local M = {}

function M.check()
  local h = vim.health
  local config = require('tether.config')
  h.start('tether.nvim')
  if vim.fn.has('nvim-0.10') == 1 then
    h.ok('Neovim ' .. tostring(vim.version()))
  else
    h.error('Neovim 0.10 or newer is needed')
  end
  local exe = config.options.cmd[1]
  if vim.fn.executable(exe) == 1 then
    local out = vim.fn.system({ exe, '--version' })
    h.ok(('`%s` found: %s'):format(vim.fn.exepath(exe), vim.trim(out)))
  else
    h.error(
      ('`%s` is not executable'):format(exe),
      {
        'build it with `cargo build --release` and put target/release/tether on your PATH',
        'or set cmd = { "/path/to/tether" } in setup()',
      }
    )
  end
  local clients = vim.lsp.get_clients({ name = require('tether.client').name })
  if #clients == 0 then
    h.info('no Tether client is running (it starts with the first buffer or command)')
  end
  for _, c in ipairs(clients) do
    h.ok(('client %d: root %s'):format(c.id, tostring(c.root_dir or vim.fn.getcwd())))
  end
  local info = debug.getinfo(vim.ui.select, 'S')
  if info and type(info.source) == 'string' and info.source:find('vim/ui%.lua$') then
    h.info('approvals use the built-in vim.ui.select (a numbered list)')
  else
    h.info('approvals use a replaced vim.ui.select from ' .. tostring(info and info.short_src))
  end
end

return M
