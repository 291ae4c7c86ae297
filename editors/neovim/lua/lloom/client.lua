--- Starting, finding and talking to the lloom-lsp client on every Nvim from 0.7.
---
--- * 0.8+ starts clients with vim.lsp.start, which reuses one client per root;
---   0.7 has only vim.lsp.start_client + vim.lsp.buf_attach_client, so the reuse
---   is done here.
--- * From 0.11 client methods are called with `:`; before, with `.`.
--- * Settings live in one place (`state.settings`) and reach the server three ways:
---   initializationOptions, workspace/configuration answers, and
---   workspace/didChangeConfiguration pushes when they change.
local config = require('lloom.config')

local api = vim.api
local uv = vim.uv or vim.loop

local M = {}

M.name = 'lloom'

M.state = {
  options = nil, -- setup()'s options; nil until setup() runs
  settings = nil, -- the normalized `{ lloom = ... }` settings in force
  started = {}, -- client ids this plugin started
  by_root = {}, -- 0.7: root directory -> client id
  last_weave = {}, -- client id -> the last weave's speed line (or how it ended)
  warned = {},
}
local state = M.state

local method_calls = vim.fn.has('nvim-0.11') == 1

--- Call a client method: `client:name(...)` from 0.11, `client.name(...)` before.
function M.call(client, name, ...)
  if method_calls then
    return client[name](client, ...)
  end
  return client[name](...)
end

local function list_clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = M.name })
  end
  return vim.tbl_filter(function(client)
    return client.name == M.name
  end, vim.lsp.get_active_clients())
end

--- Every running lloom client: the ones setup() started and any from vim.lsp.enable('lloom').
function M.all()
  local seen, out = {}, {}
  for _, client in ipairs(list_clients()) do
    seen[client.id] = true
    table.insert(out, client)
  end
  for id in pairs(state.started) do
    local client = vim.lsp.get_client_by_id(id)
    if client and not seen[id] then
      table.insert(out, client)
    end
  end
  table.sort(out, function(a, b)
    return a.id < b.id
  end)
  return out
end

--- The lloom client attached to a buffer (0: the current one), or nil.
function M.get(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = M.name })[1]
  end
  for _, client in ipairs(M.all()) do
    if vim.lsp.buf_is_attached(bufnr, client.id) then
      return client
    end
  end
end

function M.is_running(client)
  return client ~= nil and not M.call(client, 'is_stopped')
end

--- The nearest directory above the buffer's file holding a root marker; without
--- one, the working directory, so loose text files share one server.
function M.root_dir(bufnr, markers)
  local name = api.nvim_buf_get_name(bufnr)
  if name ~= '' then
    local dir = vim.fn.fnamemodify(name, ':p:h')
    while true do
      for _, marker in ipairs(markers) do
        if uv.fs_stat(dir .. '/' .. marker) then
          return dir
        end
      end
      local parent = vim.fn.fnamemodify(dir, ':h')
      if parent == dir then
        break
      end
      dir = parent
    end
  end
  return vim.fn.getcwd()
end

local function on_progress(err, result, ctx, handler_config)
  local value = type(result) == 'table' and result.value or nil
  if type(value) == 'table' and value.kind == 'end' and value.message then
    state.last_weave[ctx.client_id] = value.message
  end
  local default = vim.lsp.handlers['$/progress']
  if default then
    return default(err, result, ctx, handler_config)
  end
end

local function inline_completion()
  local ic = vim.lsp.inline_completion
  if type(ic) == 'table' and type(ic.enable) == 'function' and type(ic.get) == 'function' then
    return ic
  end
end
M.inline_completion = inline_completion

local function on_attach(client, bufnr)
  local options = state.options or config.defaults
  for action, lhs in pairs(options.keymaps) do
    local keymap = config.keymap_actions[action]
    local run
    if action == 'inline_accept' then
      run = inline_completion() and function()
        inline_completion().get()
      end
    else
      run = function()
        require('lloom')[action]()
      end
    end
    if lhs and run then
      vim.keymap.set(keymap.mode, lhs, run, { buffer = bufnr, desc = 'LLooM: ' .. keymap.desc })
    end
  end
  local ic = inline_completion()
  if options.inline_completion and ic then
    pcall(ic.enable, true, { bufnr = bufnr })
  end
  if options.on_attach then
    options.on_attach(client, bufnr)
  end
end

--- The client configuration for one root.
function M.lsp_config(options, root)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- 0.7 answers workspace/configuration but does not say so, and the server only
  -- asks clients that do.
  capabilities.workspace = capabilities.workspace or {}
  capabilities.workspace.configuration = true
  return {
    name = M.name,
    cmd = options.cmd,
    root_dir = root,
    settings = vim.deepcopy(state.settings),
    init_options = vim.deepcopy(state.settings),
    capabilities = capabilities,
    handlers = { ['$/progress'] = on_progress },
    on_attach = on_attach,
    on_exit = function(_, _, client_id)
      state.started[client_id] = nil
      state.last_weave[client_id] = nil
    end,
  }
end

local function warn_once(key, message)
  if not state.warned[key] then
    state.warned[key] = true
    vim.notify(message, vim.log.levels.ERROR)
  end
end

--- Start (or reuse) the client for a buffer's root and attach it.  Returns the client id.
function M.attach(bufnr)
  local options = state.options
  if not options or not api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  if vim.fn.executable(options.cmd[1]) ~= 1 then
    warn_once(
      'cmd',
      string.format(
        'LLooM: cannot start the server: %q is not executable. Install it (pip install lloom-lsp) '
          .. 'or set `cmd` in setup(). See :checkhealth lloom',
        options.cmd[1]
      )
    )
    return nil
  end
  local root = M.root_dir(bufnr, options.root_markers)
  local lsp_config = M.lsp_config(options, root)
  local id
  if vim.lsp.start then
    api.nvim_buf_call(bufnr, function()
      id = vim.lsp.start(lsp_config, { bufnr = bufnr })
    end)
  else
    id = state.by_root[root]
    if not M.is_running(id and vim.lsp.get_client_by_id(id)) then
      id = vim.lsp.start_client(lsp_config)
      state.by_root[root] = id
    end
    if id then
      vim.lsp.buf_attach_client(bufnr, id)
    end
  end
  if id then
    state.started[id] = true
  end
  return id
end

--- Attach to buffers of the configured filetypes, now and whenever one is opened.
function M.enable(options)
  state.options = options
  state.settings = options.settings
  local group = api.nvim_create_augroup('lloom', { clear = true })
  api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = options.filetypes,
    desc = 'LLooM: start or attach lloom-lsp',
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if
      api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(options.filetypes, vim.bo[bufnr].filetype)
    then
      M.attach(bufnr)
    end
  end
end

--- Make `settings` the ones in force: every running client answers
--- workspace/configuration with them from now on, and is told they changed.
--- Returns how many clients were told.
function M.push_settings(settings)
  state.settings = settings
  if state.options then
    state.options.settings = settings
  end
  local told = 0
  for _, client in ipairs(M.all()) do
    -- 0.7 answers from client.config.settings, newer versions from client.settings.
    client.config.settings = vim.deepcopy(settings)
    client.settings = vim.deepcopy(settings)
    if client.initialized and M.is_running(client) then
      M.call(client, 'notify', 'workspace/didChangeConfiguration', { settings = settings })
      told = told + 1
    end
  end
  return told
end

--- Send a request to the client; `handler(err, result)` runs when the answer comes.
function M.request(client, method, params, handler, bufnr)
  return M.call(client, 'request', method, params, function(err, result)
    handler(err, result)
  end, bufnr)
end

--- workspace/executeCommand: `handler(err, result)`.
function M.execute(client, command, arguments, handler, bufnr)
  return M.request(
    client,
    'workspace/executeCommand',
    { command = command, arguments = arguments },
    handler,
    bufnr
  )
end

return M
