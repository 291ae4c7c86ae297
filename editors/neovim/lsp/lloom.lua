-- lloom-lsp for Nvim 0.11+: `vim.lsp.enable('lloom')` starts it on these filetypes.
-- Change any field with vim.lsp.config('lloom', { ... }); the settings are listed in
-- :help lloom-settings, e.g.
--   settings = { lloom = { backend = { url = 'http://127.0.0.1:8080' } } }
return {
  cmd = { 'lloom-lsp' },
  filetypes = { 'text', 'markdown' },
  root_markers = { '.git' },
  settings = { lloom = {} },
}
