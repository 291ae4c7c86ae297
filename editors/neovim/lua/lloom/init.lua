--- lloom.nvim: LLooM's weave of LLM token probabilities in Nvim, through lloom-lsp.
---
--- The public surface.  `setup()` starts the client on the configured filetypes;
--- `update_settings()` changes the server's settings while it runs; the rest are the
--- actions behind the :LLooM* commands, the statusline component and the ghost-text
--- keys.  The parts live in lloom.config (options and validation), lloom.client
--- (starting and talking to the client on Nvim 0.7+), lloom.position (cursor and LSP
--- positions), lloom.beams (picker rows), lloom.actions, lloom.tree and
--- lloom.tree_buffer (:LLooMTree), lloom.tree_file (:LLooMSaveTree, :LLooMLoadTree),
--- lloom.context (:LLooMContext), lloom.shading (lloom/spans) and lloom.inline (0.12+).
--- See :help lloom.
local actions = require('lloom.actions')
local client = require('lloom.client')
local config = require('lloom.config')

local M = {}

--- Start lloom-lsp for buffers of `opts.filetypes`.  Every option is optional and only
--- overrides its default (see :help lloom-setup); calling setup() again replaces them,
--- and the clients already running are told the new settings.
function M.setup(opts)
  client.enable(config.resolve(opts))
end

--- Change settings while the server runs, e.g.
--- `update_settings({ lloom = { weave = { maxDepth = 3 } } })`.  The change is merged
--- into each client's settings in force (setup()'s, or vim.lsp.config('lloom')'s) and
--- pushed with workspace/didChangeConfiguration.  Returns how many clients were told.
function M.update_settings(settings)
  local changes = config.check_settings(config.normalize_settings(settings))
  return client.update_settings(changes)
end

--- The settings in force, as `{ lloom = { ... } }` (only what was set; the server
--- supplies the rest): setup()'s, else those of the buffer's client.
function M.settings(bufnr)
  if client.state.settings then
    return vim.deepcopy(client.state.settings)
  end
  local attached = client.get(bufnr or 0)
  local settings = attached and (attached.settings or attached.config.settings)
  return config.normalize_settings(vim.deepcopy(settings or {}))
end

--- The lloom-lsp client attached to a buffer (default: the current one), or nil.
function M.client(bufnr)
  return client.get(bufnr or 0)
end

M.weave = actions.weave
M.step = actions.step
M.accept = actions.accept
M.next_beam = actions.next_beam
M.info = actions.info
M.info_table = actions.info_table
M.cancel = actions.cancel
M.toggle = actions.toggle
M.weave_result = actions.weave_result
M.status = actions.status
M.state = actions.state

--- :LLooMTree — the weave at the cursor as a token tree beside the story (see
--- :help :LLooMTree); `done(view)` runs once it is shown.  `options`: lloom.tree's,
--- e.g. `{ fresh = true }` (:LLooMTree!).
function M.tree(done, options)
  return require('lloom.tree_buffer').open(done, options)
end

--- :LLooMSaveTree [format] — save the tree of the weave at the cursor beside the file
--- (`<file>.lloom.json`; `format` "loomsidian": `<file>.loomsidian.json`, for other loom
--- tools); `done(err, result)` with `{ path, nodes }`.
function M.save_tree(done, format)
  return require('lloom.tree_file').save(done, format)
end

--- :LLooMLoadTree — show the tree saved beside the file; `done(view)` once shown.
function M.load_tree(done)
  return require('lloom.tree_file').load(done)
end

--- :LLooMContext — what the next weave at the cursor would send (memory, author's note,
--- window, token count, then the prompt exactly), read-only in a scratch buffer below
--- the story; `done(err, result, bufnr)` with the server's `lloom.showContext` answer.
function M.show_context(done)
  return require('lloom.context').show(done)
end

--- :LLooMShading — turn shading woven text by probability on or off; returns the new value.
function M.shading()
  return require('lloom.shading').toggle()
end

--- The current buffer's woven spans (`lloom.spans`), drawn when shading is on:
--- `callback(err, result)` with `{ uri, version, spans = { { range, prob, text } } }`.
function M.spans(callback)
  return require('lloom.shading').refresh(callback)
end

--- The `lloom.tree` answer for the cursor: `callback(err, result)`.
function M.tree_result(callback, options)
  return require('lloom.tree_buffer').tree_result(callback, options)
end

--- For an `expr` mapping in Insert mode (Nvim 0.12+): accept the ghost text (`part`:
--- 'all', 'word' or 'line'), weave it when none is shown, else return `key`.
function M.inline_accept(part, key)
  return require('lloom.inline').accept(part or 'all', key or '')
end

--- For an `expr` mapping in Insert mode: show the next (`count` > 0) or previous beam
--- as ghost text; `key` when none is shown.
function M.inline_cycle(count, key)
  return require('lloom.inline').cycle(count or 1, key or '')
end

return M
