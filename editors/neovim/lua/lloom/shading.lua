--- Probability shading of woven text: the server's `lloom/spans` (every woven token of a
--- document with its probability, sent while `lloom.woven.shading` is on) drawn as
--- extmarks in the `lloom_shading` namespace, the less probable the stronger, as the VS
--- Code extension does.  Each notification is the whole list for one document version,
--- so the buffer's marks are cleared and redrawn; one for an older version than the
--- buffer's is dropped (a newer one follows the change that outdated it).
local position = require('lloom.position')

local api = vim.api

local M = {}

M.namespace = api.nvim_create_namespace('lloom_shading')

--- Probability bounds and their groups, strongest first: a token below a bound gets its
--- group; from the last bound up, no shade.  The VS Code extension's levels.
M.LEVELS = {
  { below = 0.05, group = 'LLooMShadeLow' },
  { below = 0.2, group = 'LLooMShadeMedium' },
  { below = 0.5, group = 'LLooMShadeFaint' },
}

--- Subtle backgrounds for a dark and a light 'background'.
local COLOURS = {
  dark = {
    LLooMShadeLow = { gui = '#4f2a2a', cterm = 52 },
    LLooMShadeMedium = { gui = '#3f3223', cterm = 58 },
    LLooMShadeFaint = { gui = '#2f2c25', cterm = 236 },
  },
  light = {
    LLooMShadeLow = { gui = '#f5cccc', cterm = 224 },
    LLooMShadeMedium = { gui = '#f6e2c4', cterm = 223 },
    LLooMShadeFaint = { gui = '#f6f1e2', cterm = 230 },
  },
}

--- Buffer -> the last spans drawn: `{ version, spans }` (for tests and your own UI).
M.drawn = {}

--- The highlight group of a token's probability, or nil when it is not shaded.
function M.group(prob)
  prob = tonumber(prob)
  if not prob then
    return nil
  end
  for _, level in ipairs(M.LEVELS) do
    if prob < level.below then
      return level.group
    end
  end
  return nil
end

--- Define the groups with `default`, so a colorscheme's or your own win; run again on
--- ColorScheme, since `:highlight clear` drops them.
function M.define_highlights()
  local colours = COLOURS[vim.o.background == 'light' and 'light' or 'dark']
  for group, colour in pairs(colours) do
    vim.cmd(
      string.format('highlight default %s guibg=%s ctermbg=%d', group, colour.gui, colour.cterm)
    )
  end
end

local prepared = false

local function prepare()
  if prepared then
    return
  end
  prepared = true
  M.define_highlights()
  local group = api.nvim_create_augroup('lloom.shading', { clear = true })
  api.nvim_create_autocmd('ColorScheme', {
    group = group,
    desc = 'LLooM: the shading groups again',
    callback = M.define_highlights,
  })
end

--- Remove a buffer's shading.
function M.clear(bufnr)
  M.drawn[bufnr] = nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  end
end

local watched = {}

--- Clear the shading when the buffer is unloaded or the client detaches from it.
local function watch(bufnr)
  if watched[bufnr] then
    return
  end
  watched[bufnr] = true
  local function forget()
    watched[bufnr] = nil
    M.clear(bufnr)
  end
  api.nvim_create_autocmd({ 'BufUnload', 'BufWipeout' }, {
    buffer = bufnr,
    once = true,
    desc = 'LLooM: forget the shading',
    callback = forget,
  })
  if vim.fn.has('nvim-0.8') == 1 then
    api.nvim_create_autocmd('LspDetach', {
      buffer = bufnr,
      desc = 'LLooM: clear the shading',
      callback = function(args)
        local client = vim.lsp.get_client_by_id(args.data and args.data.client_id or -1)
        if client == nil or client.name == 'lloom' then
          M.clear(bufnr)
        end
      end,
    })
  else
    -- 0.7 has no LspDetach: nvim_buf_attach's on_detach comes with the buffer's end.
    api.nvim_buf_attach(bufnr, false, {
      on_detach = function()
        vim.schedule(forget)
      end,
    })
  end
end

--- The loaded buffer of a document URI, or nil (never creates one, unlike
--- vim.uri_to_bufnr).
local function buffer_of(uri)
  for _, bufnr in ipairs(api.nvim_list_bufs()) do
    if api.nvim_buf_is_loaded(bufnr) and vim.uri_from_bufnr(bufnr) == uri then
      return bufnr
    end
  end
end

--- Draw `spans` (LSP ranges in `encoding` with a `prob`) on the buffer, in place of its
--- shading.
function M.draw(bufnr, spans, encoding, version)
  prepare()
  watch(bufnr)
  api.nvim_buf_clear_namespace(bufnr, M.namespace, 0, -1)
  M.drawn[bufnr] = { version = version, spans = spans }
  for _, span in ipairs(spans) do
    local group = type(span) == 'table' and type(span.range) == 'table' and M.group(span.prob)
    if group then
      local srow, scol = position.from_lsp(bufnr, span.range.start, encoding)
      local erow, ecol = position.from_lsp(bufnr, span.range['end'], encoding)
      if erow > srow or (erow == srow and ecol > scol) then
        pcall(api.nvim_buf_set_extmark, bufnr, M.namespace, srow, scol, {
          end_row = erow,
          end_col = ecol,
          hl_group = group,
          priority = 90, -- under search and visual (which are drawn above 100)
        })
      end
    end
  end
end

--- The version Nvim told the server for a buffer (its changedtick, on 0.7 and 0.11).
function M.buffer_version(bufnr)
  return vim.lsp.util.buf_versions[bufnr]
end

--- Draw an answer `{ uri, version, spans }` (lloom/spans, or lloom.spans) from
--- `client`; false when it is for no buffer here or for another version.
function M.apply(client, params)
  if type(params) ~= 'table' or type(params.uri) ~= 'string' then
    return false
  end
  local bufnr = buffer_of(params.uri)
  if not bufnr then
    return false
  end
  local version = params.version
  if version ~= nil and version ~= vim.NIL and version ~= M.buffer_version(bufnr) then
    return false
  end
  local spans = type(params.spans) == 'table' and params.spans or {}
  if spans[1] == nil then
    M.clear(bufnr)
    return true
  end
  local encoding = client and client.offset_encoding or 'utf-16'
  M.draw(bufnr, spans, encoding, version ~= vim.NIL and version or nil)
  return true
end

--- The `lloom/spans` handler (setup()'s clients and vim.lsp.enable('lloom')'s alike).
function M.on_spans(_, params, ctx)
  local client = ctx and vim.lsp.get_client_by_id(ctx.client_id)
  -- Outside the fast event the notification arrives in, where extmarks may be set.
  vim.schedule(function()
    M.apply(client, params)
  end)
end

--- Shading in force for a buffer's client: the setting, else its default.
function M.enabled(bufnr)
  return (require('lloom.config').value(require('lloom').settings(bufnr), 'lloom.woven.shading'))
end

--- :LLooMShading — turn `lloom.woven.shading` on or off for every client (the server
--- then sends the spans, or an empty list).  Returns the new value.
function M.toggle()
  local value = not M.enabled(0)
  require('lloom').update_settings({ lloom = { woven = { shading = value } } })
  if not value then
    -- Clear now too: an old server would not send the empty list.
    for _, bufnr in ipairs(api.nvim_list_bufs()) do
      if M.drawn[bufnr] then
        M.clear(bufnr)
      end
    end
  end
  require('lloom.actions').notify('shading ' .. (value and 'on' or 'off'))
  return value
end

--- The current buffer's spans, asked for with `lloom.spans` and drawn (when shading is
--- on): `callback(err, result)`.
function M.refresh(callback)
  local actions = require('lloom.actions')
  local client, bufnr = actions.ready_client()
  if not client then
    return callback and callback('no ready lloom-lsp client', nil)
  end
  local uri = vim.uri_from_bufnr(bufnr)
  require('lloom.client').execute(client, 'lloom.spans', { uri }, function(err, result)
    if type(result) == 'table' and result.error then
      vim.notify(tostring(result.error), vim.log.levels.ERROR)
    elseif not err and M.enabled(bufnr) then
      M.apply(client, result)
    end
    if callback then
      callback(err, result)
    end
  end, bufnr)
end

return M
