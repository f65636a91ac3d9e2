-- Config for `vim.lsp.enable('tether')` on Neovim 0.11+, so that the client
-- gets tether.nvim's handlers (approvals, chat updates) even without setup().
return require('tether.client').lsp_config()
