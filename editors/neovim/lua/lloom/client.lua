--- Starting, finding and talking to the lloom-lsp client on every Nvim from 0.7.
---
--- * 0.8+ starts clients with vim.lsp.start, which reuses one client per root;
---   0.7 has only vim.lsp.start_client + vim.lsp.buf_attach_client, so the reuse
---   is done here.
--- * From 0.11 client methods are called with `:`; before, with `.`.
--- * Settings reach the server three ways: initializationOptions, workspace/configuration
---   answers (from each client's own settings), and workspace/didChangeConfiguration
---   pushes when they change.  setup()'s live in `state.settings`; a client started by
---   vim.lsp.enable('lloom') keeps its own, so a change is merged into each client's.
--- * `lloom/status` (the server's start and end of every weave) feeds the statusline;
---   `lloom/spans` (the woven tokens' probabilities) goes to lloom.shading.
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
  status = {}, -- document URI -> the last lloom/status: { state, message, client_id }
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

local function inline_completion()
  local ic = vim.lsp.inline_completion
  if type(ic) == 'table' and type(ic.enable) == 'function' and type(ic.get) == 'function' then
    return ic
  end
end
M.inline_completion = inline_completion

--- `lloom/status` params `{ uri, state = weaving|done|failed|cancelled|idle, message }`: kept
--- per document for require('lloom').status(), then told to the statusline and to
--- `User LLooMStatus` autocommands.  `weaving` comes at a weave's start and again with
--- what it is doing ("3 of 12 beams", "waiting for a busy server").
function M.on_status(_, params, ctx)
  if type(params) ~= 'table' or type(params.state) ~= 'string' then
    return
  end
  local entry = {
    state = params.state,
    message = type(params.message) == 'string' and params.message or '',
    uri = params.uri,
    client_id = ctx and ctx.client_id,
  }
  local previous = state.status[params.uri or '']
  state.status[params.uri or ''] = entry
  -- a `done` that ends a weave carries its speed line; `idle` ("settings changed") clears
  -- a failure the new settings may have fixed, and is no weave
  local ends_weave = previous ~= nil and previous.state == 'weaving'
  if entry.state == 'done' and ends_weave and entry.message ~= '' and entry.client_id then
    state.last_weave[entry.client_id] = entry.message
  end
  vim.schedule(function()
    pcall(vim.cmd, 'redrawstatus')
    local opts = { pattern = 'LLooMStatus', modeline = false }
    if vim.fn.has('nvim-0.8') == 1 then
      opts.data = entry
    end
    pcall(api.nvim_exec_autocmds, 'User', opts)
  end)
end

--- Make the client's code-action requests weave where :LLooMWeave does.  In Normal
--- mode Nvim's own requests (vim.lsp.buf.code_action()) put the range before the
--- character under the cursor; lloom.position puts the weave after it, so an empty
--- range at the cursor is moved there.  Installed once per client.
function M.place_code_actions(client)
  if client._lloom_placed then
    return
  end
  client._lloom_placed = true
  local request = client.request
  local function placed(method, params, bufnr)
    if method == 'textDocument/codeAction' and type(params) == 'table' then
      return require('lloom.position').code_action_params(params, bufnr, client.offset_encoding)
    end
    return params
  end
  if method_calls then
    client.request = function(self, method, params, handler, bufnr)
      return request(self, method, placed(method, params, bufnr), handler, bufnr)
    end
  else
    client.request = function(method, params, handler, bufnr)
      return request(method, placed(method, params, bufnr), handler, bufnr)
    end
  end
end

local function map_keys(bufnr, keymaps)
  for action, lhs in pairs(keymaps) do
    local keymap = config.keymap_actions[action]
    if lhs and keymap then
      local run, expr = nil, false
      if keymap.inline then
        expr = true
        run = function()
          return require('lloom.inline').accept(keymap.inline, lhs)
        end
      elseif keymap.cycle then
        expr = true
        run = function()
          return require('lloom.inline').cycle(keymap.cycle, lhs)
        end
      else
        run = function()
          require('lloom')[action]()
        end
      end
      vim.keymap.set(
        keymap.mode,
        lhs,
        run,
        { buffer = bufnr, expr = expr, desc = 'LLooM: ' .. keymap.desc }
      )
    end
  end
end

--- `key` (setup()'s hover_key, 'K') to vim.lsp.buf.hover() in a lloom buffer: a woven
--- token's probability and its alternatives, where Nvim 0.7 to 0.9 would run 'keywordprg'
--- (man).  Only where nothing maps the key yet: a mapping of the user's (global or this
--- buffer's) stays, and so does the one Nvim 0.10+ makes itself, which also hovers.
local function map_hover(bufnr, key)
  if not key then
    return
  end
  local existing = api.nvim_buf_call(bufnr, function()
    return vim.fn.maparg(key, 'n', false, true)
  end)
  if type(existing) == 'table' and existing.lhs ~= nil then
    return
  end
  vim.keymap.set('n', key, function()
    vim.lsp.buf.hover()
  end, { buffer = bufnr, desc = 'LLooM: hover (a woven token and its alternatives)' })
end

--- Everything a lloom client needs on a buffer, whoever started it (setup()'s
--- on_attach, or LspAttach for vim.lsp.enable('lloom')).
function M.prepare(client, bufnr)
  M.place_code_actions(client)
  M.quiet_edits(client)
  local options = state.options
  if not options or not state.started[client.id] then
    return
  end
  map_keys(bufnr, options.keymaps)
  map_hover(bufnr, options.hover_key)
  local ic = inline_completion()
  if options.inline_completion and ic then
    pcall(ic.enable, true, { bufnr = bufnr })
  end
end

local function on_attach(client, bufnr)
  state.started[client.id] = true
  M.prepare(client, bufnr)
  local options = state.options or config.defaults
  if options.on_attach then
    options.on_attach(client, bufnr)
  end
end

--- workspace/applyEdit (lloom.accept inserting a beam): Nvim's own handler, which
--- applies the edit only to the document version it was made for, without the label
--- it would print ("Workspace edit LLooM: accept beam") over the speed line.
function M.apply_edit(err, params, ctx, handler_config)
  if type(params) == 'table' and params.label then
    params = vim.tbl_extend('force', {}, params)
    params.label = nil
  end
  return vim.lsp.handlers['workspace/applyEdit'](err, params, ctx, handler_config)
end

--- Give `client` M.apply_edit (setup()'s clients have it from M.lsp_config; those of
--- vim.lsp.enable('lloom') get it here, on LspAttach).
function M.quiet_edits(client)
  if type(client.handlers) == 'table' then
    client.handlers['workspace/applyEdit'] = M.apply_edit
  end
end

--- The client configuration for one root.
function M.lsp_config(options, root)
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  -- 0.7 answers workspace/configuration but does not say so, and the server only
  -- asks clients that do.
  capabilities.workspace = capabilities.workspace or {}
  capabilities.workspace.configuration = true
  if vim.fn.has('nvim-0.8') == 0 then
    -- 0.7's hover float shows Markdown's code spans and bold raw (`word`, **0.350**):
    -- ask for plain text, which the server writes to be read as it is
    local text_document = capabilities.textDocument or {}
    capabilities.textDocument = text_document
    text_document.hover = text_document.hover or {}
    text_document.hover.contentFormat = { 'plaintext' }
  end
  return {
    name = M.name,
    cmd = options.cmd,
    root_dir = root,
    settings = vim.deepcopy(state.settings),
    init_options = vim.deepcopy(state.settings),
    capabilities = capabilities,
    handlers = {
      ['workspace/applyEdit'] = M.apply_edit,
      ['lloom/status'] = M.on_status,
      ['lloom/spans'] = function(...)
        return require('lloom.shading').on_spans(...)
      end,
    },
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
        'LLooM: cannot start the server: %q is not executable. Install it from the '
          .. 'lloom-lsp checkout (python3 -m venv .venv && .venv/bin/pip install .) '
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
  -- setup() again (a plugin manager reloading the config): the clients already
  -- running get the new settings, not only the ones started from now on.
  for id in pairs(state.started) do
    local running = vim.lsp.get_client_by_id(id)
    if running then
      M.tell(running, options.settings)
      for bufnr in pairs(running.attached_buffers or {}) do
        if api.nvim_buf_is_loaded(bufnr) then
          M.prepare(running, bufnr) -- the new keymaps
        end
      end
    end
  end
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

--- Give one client `settings`: it answers workspace/configuration with them from
--- now on and is told they changed.  Returns 1 if it was told, else 0.
function M.tell(client, settings)
  -- 0.7 answers from client.config.settings, newer versions from client.settings.
  client.config.settings = vim.deepcopy(settings)
  client.settings = vim.deepcopy(settings)
  if client.initialized and M.is_running(client) then
    M.call(client, 'notify', 'workspace/didChangeConfiguration', { settings = settings })
    M.forget_failures(client.id)
    return 1
  end
  return 0
end

--- Drop the client's `failed` statuses: they told of the settings just replaced, and the
--- statusline should not show them until the next weave.  (A `lloom/status` the server
--- sends for the new settings replaces them anyway.)
function M.forget_failures(client_id)
  local forgot = false
  for uri, entry in pairs(state.status) do
    if entry.state == 'failed' and (entry.client_id == nil or entry.client_id == client_id) then
      state.status[uri] = nil
      forgot = true
    end
  end
  if forgot then
    vim.schedule(function()
      pcall(vim.cmd, 'redrawstatus')
    end)
  end
end

--- The settings a client holds now, normalized.
local function settings_of(client)
  local current = client.settings
  if type(current) ~= 'table' or next(current) == nil then
    current = client.config.settings
  end
  return config.normalize_settings(type(current) == 'table' and current or {})
end

--- Merge normalized `changes` into the settings of setup() and of every running
--- client (each keeps the rest of its own), and into vim.lsp.config('lloom') so the
--- clients vim.lsp.enable starts later have them too.  Returns how many were told.
function M.update_settings(changes)
  if state.settings then
    state.settings = config.merge_settings(state.settings, changes)
    state.options.settings = state.settings
  elseif vim.lsp.config then
    local ok, lsp_config = pcall(function()
      return vim.lsp.config.lloom
    end)
    if ok and type(lsp_config) == 'table' then
      local merged =
        config.merge_settings(config.normalize_settings(lsp_config.settings or {}), changes)
      vim.lsp.config('lloom', { settings = merged })
    end
  end
  local told = 0
  for _, client in ipairs(M.all()) do
    local base = state.started[client.id] and state.settings or settings_of(client)
    told = told + M.tell(client, config.merge_settings(base, changes))
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
