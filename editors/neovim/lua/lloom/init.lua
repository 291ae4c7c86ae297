--- lloom.nvim: LLooM's weave of LLM token probabilities in Nvim, through lloom-lsp.
---
--- The public surface.  `setup()` starts the client on the configured filetypes;
--- `update_settings()` changes the server's settings while it runs; the rest are the
--- actions behind :LLooMWeave, :LLooMAccept and :LLooMInfo.  The parts live in
--- lloom.config (options and validation), lloom.client (starting and talking to the
--- client on Nvim 0.7+), lloom.position (cursor and LSP positions) and lloom.actions.
--- See :help lloom.
local actions = require('lloom.actions')
local client = require('lloom.client')
local config = require('lloom.config')

local M = {}

--- Start lloom-lsp for buffers of `opts.filetypes`.  Every option is optional and only
--- overrides its default (see :help lloom-setup); calling setup() again replaces them.
function M.setup(opts)
  client.enable(config.resolve(opts))
end

--- Change settings while the server runs, e.g.
--- `update_settings({ lloom = { weave = { maxDepth = 3 } } })`.  The change is merged
--- into the settings in force and pushed with workspace/didChangeConfiguration.
--- Returns how many clients were told.
function M.update_settings(settings)
  local changes = config.check_settings(config.normalize_settings(settings))
  local current = client.state.settings or config.normalize_settings({})
  return client.push_settings(config.merge_settings(current, changes))
end

--- The settings in force, as `{ lloom = { ... } }` (only what was set; the server
--- supplies the rest).
function M.settings()
  return vim.deepcopy(client.state.settings or config.normalize_settings({}))
end

--- The lloom-lsp client attached to a buffer (default: the current one), or nil.
function M.client(bufnr)
  return client.get(bufnr or 0)
end

M.weave = actions.weave
M.accept = actions.accept
M.info = actions.info
M.status = actions.status
M.weave_result = actions.weave_result

return M
