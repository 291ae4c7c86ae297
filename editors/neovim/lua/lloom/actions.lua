--- What the :LLooM* commands do: weave at the cursor and pick a beam, accept the best
--- beam, and report the client's status.  Everything goes through the lloom-lsp client
--- attached to the current buffer; the picker is vim.ui.select, so any UI plugin that
--- replaces it (telescope, fzf-lua, dressing) shows the beams.
local client_mod = require('lloom.client')
local config = require('lloom.config')
local position = require('lloom.position')

local api = vim.api

local M = {}

local function notify(message, level)
  vim.notify('LLooM: ' .. message, level or vim.log.levels.INFO)
end

--- The lloom client of the current buffer, ready for requests; or nil, after telling why.
local function ready_client()
  local bufnr = api.nvim_get_current_buf()
  local client = client_mod.get(bufnr)
  if not client then
    notify('no lloom-lsp client is attached to this buffer (see :LLooMInfo)', vim.log.levels.WARN)
    return nil
  end
  if not client.initialized then
    notify('lloom-lsp is still starting; try again in a moment', vim.log.levels.WARN)
    return nil
  end
  return client, bufnr
end

local function remember(client, result)
  if type(result) == 'table' and type(result.speedLine) == 'string' and result.speedLine ~= '' then
    client_mod.state.last_weave[client.id] = result.speedLine
  end
end

--- The TextEdit inside a code action's WorkspaceEdit (versioned or not).
local function edit_text(edit)
  local changes = edit.documentChanges
  if changes and changes[1] and changes[1].edits then
    return changes[1].edits[1] and changes[1].edits[1].newText
  end
  for _, edits in pairs(edit.changes or {}) do
    return edits[1] and edits[1].newText
  end
end

--- :LLooMWeave — ask lloom-lsp for its code actions at the cursor (one per beam, best
--- first), show them with vim.ui.select, and apply the chosen one.
function M.weave()
  local client, bufnr = ready_client()
  if not client then
    return
  end
  local encoding = client.offset_encoding or 'utf-16'
  local pos, row, col = position.cursor(encoding)
  local insert_mode = position.inserting()
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = pos, ['end'] = pos },
    -- triggerKind 1 (Invoked): only an explicit request weaves.
    context = { diagnostics = {}, only = { 'quickfix' }, triggerKind = 1 },
  }
  api.nvim_echo({ { 'LLooM: weaving…' } }, false, {})
  client_mod.request(client, 'textDocument/codeAction', params, function(err, actions)
    if err then
      notify('weave failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
      return
    end
    local beams = vim.tbl_filter(function(action)
      return type(action) == 'table' and action.edit ~= nil
    end, actions or {})
    if #beams == 0 then
      notify('no beams here (see :LLooMInfo)', vim.log.levels.WARN)
      return
    end
    vim.ui.select(beams, {
      prompt = 'LLooM beams',
      kind = 'lloom.beam',
      -- The title is "Continue: <label> (p=...)": the server's label already tells beams
      -- that begin alike apart, so the picker shows it as it is.
      format_item = function(action)
        return (action.title:gsub('^Continue: ', ''))
      end,
    }, function(choice)
      if not choice then
        return
      end
      if not api.nvim_buf_is_valid(bufnr) or api.nvim_buf_get_changedtick(bufnr) ~= tick then
        notify('the buffer changed since the weave; weave again', vim.log.levels.WARN)
        return
      end
      vim.lsp.util.apply_workspace_edit(choice.edit, encoding)
      local text = edit_text(choice.edit)
      if text and api.nvim_get_current_buf() == bufnr then
        position.after_insert(row, col, text, insert_mode)
      end
    end)
  end, bufnr)
end

--- :LLooMAccept — insert the best beam of the weave at the cursor.  The server keeps
--- the last weave for this exact story, so after :LLooMWeave this costs no new weave.
function M.accept()
  local client, bufnr = ready_client()
  if not client then
    return
  end
  local pos, row, col = position.cursor(client.offset_encoding or 'utf-16')
  local insert_mode = position.inserting()
  local uri = vim.uri_from_bufnr(bufnr)
  client_mod.execute(client, 'lloom.weave', { uri, pos }, function(err, result)
    if err or type(result) ~= 'table' then
      notify('weave failed: ' .. tostring(err and err.message or err), vim.log.levels.ERROR)
      return
    end
    remember(client, result)
    local best = (result.beams or {})[1]
    if not best then
      notify(
        'no beams here' .. (result.error and (': ' .. result.error) or ''),
        vim.log.levels.WARN
      )
      return
    end
    local args = { uri, result.version, pos, best.insertText }
    client_mod.execute(client, 'lloom.accept', args, function(accept_err, answer)
      if accept_err or type(answer) ~= 'table' then
        notify(
          'accept failed: ' .. tostring(accept_err and accept_err.message),
          vim.log.levels.ERROR
        )
      elseif not answer.applied then
        notify('not inserted: ' .. tostring(answer.reason), vim.log.levels.WARN)
      elseif api.nvim_get_current_buf() == bufnr then
        position.after_insert(row, col, best.insertText, insert_mode)
      end
    end, bufnr)
  end, bufnr)
end

--- The weave result for the cursor, as `lloom.weave` returns it: calls
--- `callback(err, result)` with `{ beams, tree, stats, speedLine, version }`.
function M.weave_result(callback)
  local client, bufnr = ready_client()
  if not client then
    return callback('no ready lloom-lsp client', nil)
  end
  local pos = position.cursor(client.offset_encoding or 'utf-16')
  client_mod.execute(
    client,
    'lloom.weave',
    { vim.uri_from_bufnr(bufnr), pos },
    function(err, result)
      remember(client, result)
      callback(err, result)
    end,
    bufnr
  )
end

local function client_state(client)
  if not client_mod.is_running(client) then
    return 'stopped'
  end
  return client.initialized and 'running' or 'starting'
end

--- What :LLooMInfo shows, as a table.
function M.status(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local v = vim.version()
  local state = client_mod.state
  local client = client_mod.get(bufnr)
  local status = {
    nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch),
    setup = state.options ~= nil,
    filetypes = (state.options or config.defaults).filetypes,
    clients = {},
  }
  for _, c in ipairs(client_mod.all()) do
    table.insert(status.clients, {
      id = c.id,
      state = client_state(c),
      root = c.config.root_dir,
      this_buffer = client ~= nil and c.id == client.id,
    })
  end
  local settings = state.settings
  if client then
    status.client = {
      id = client.id,
      state = client_state(client),
      root = client.config.root_dir,
      cmd = client.config.cmd,
      encoding = client.offset_encoding,
      version = client.server_info and client.server_info.version or nil,
    }
    status.last_weave = state.last_weave[client.id]
    settings = client.settings or client.config.settings or settings
  end
  status.settings = config.in_force(settings)
  return status
end

--- :LLooMInfo
function M.info()
  local s = M.status(0)
  local lines = { 'LLooM on Nvim ' .. s.nvim .. (s.setup and '' or ' (setup() not called)') }
  if s.client then
    local c = s.client
    table.insert(
      lines,
      string.format(
        'client %d: %s, root %s, %s positions',
        c.id,
        c.state,
        c.root or '(none)',
        tostring(c.encoding)
      )
    )
    table.insert(
      lines,
      'server: ' .. table.concat(c.cmd, ' ') .. (c.version and (' (' .. c.version .. ')') or '')
    )
    table.insert(lines, 'last weave: ' .. (s.last_weave or 'none yet'))
  else
    table.insert(
      lines,
      'no lloom-lsp client on this buffer (filetypes: ' .. table.concat(s.filetypes, ', ') .. ')'
    )
  end
  for _, c in ipairs(s.clients) do
    if not c.this_buffer then
      table.insert(
        lines,
        string.format('other client %d: %s, root %s', c.id, c.state, c.root or '(none)')
      )
    end
  end
  table.insert(lines, 'settings (* set by you, the rest are the server defaults):')
  for _, row in ipairs(s.settings) do
    table.insert(
      lines,
      string.format('  %s %s = %s', row.set and '*' or ' ', row.key, vim.inspect(row.value))
    )
  end
  api.nvim_echo({ { table.concat(lines, '\n') } }, false, {})
  return s
end

return M
