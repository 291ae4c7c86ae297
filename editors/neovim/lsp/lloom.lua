-- lloom-lsp for Nvim 0.11+: `vim.lsp.enable('lloom')` starts it on these filetypes.
-- Change any field with vim.lsp.config('lloom', { ... }); the settings are listed in
-- :help lloom-settings, e.g.
--   settings = { lloom = { backend = { url = 'http://127.0.0.1:8080' } } }
-- The command is the checkout's .venv/bin/lloom-lsp when the plugin manager's build
-- step made one, else lloom-lsp on $PATH.  `settings.lloom` is vim.empty_dict(): an
-- empty Lua table would reach the server as a JSON list, not an object.

---@type vim.lsp.Config
return {
  cmd = require('lloom.config').server_cmd(),
  filetypes = { 'text', 'markdown' },
  root_markers = { '.git' },
  settings = { lloom = vim.empty_dict() },
}
