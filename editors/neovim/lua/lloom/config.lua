--- The options `setup()` takes, their defaults and validation, and the `lloom`
--- settings sent to lloom-lsp, checked against `lloom.schema` (generated from the
--- server's own schema, so a typo or a bad value is caught in the editor by name).
local schema = require('lloom.schema')

local uv = vim.uv or vim.loop

local M = {}

--- The plugin's own directory (editors/neovim of a lloom-lsp checkout), from where
--- this file was loaded; not resolved through symlinks, so a linked checkout counts.
M.plugin_dir = vim.fn.fnamemodify(debug.getinfo(1, 'S').source:sub(2), ':p:h:h:h')

--- Where a plugin manager's build step installs the server: the checkout's own
--- virtual environment (`python3 -m venv .venv && .venv/bin/pip install .`).
function M.repository_server()
  local repo = vim.fn.fnamemodify(M.plugin_dir, ':h:h')
  for _, bin in ipairs({ '/.venv/bin/lloom-lsp', '/.venv/Scripts/lloom-lsp.exe' }) do
    local path = repo .. bin
    local stat = uv.fs_stat(path)
    if stat and stat.type == 'file' and vim.fn.executable(path) == 1 then
      return path
    end
  end
end

--- The default server command: the checkout's .venv when the build step made one
--- (it matches this plugin's version), else `lloom-lsp` on $PATH.
function M.server_cmd()
  local path = M.repository_server()
  return { path or 'lloom-lsp' }
end

M.defaults = {
  cmd = M.server_cmd(),
  filetypes = { 'text', 'markdown' },
  root_markers = { '.git' },
  settings = {},
  keymaps = {},
  inline_completion = true,
  picker = 'auto', -- :LLooMWeave's: 'float', 'select' (vim.ui.select), or 'auto'
  hover_key = 'K', -- LSP hover in lloom buffers where K is not mapped; false: leave K
  on_attach = false, -- or function(client, bufnr)
}

--- What each `keymaps` entry maps (buffer-local, when the client attaches); all are
--- off unless given a key.
M.keymap_actions = {
  weave = { mode = 'n', desc = 'weave at the cursor and pick a beam' },
  accept = { mode = 'n', desc = 'insert the best beam at the cursor' },
  next_beam = { mode = 'n', desc = 'replace the beam just inserted with the next one' },
  tree = { mode = 'n', desc = "show the weave's token tree beside the story" },
  info = { mode = 'n', desc = 'show client status and settings' },
  cancel = { mode = 'n', desc = 'cancel the weaves in progress' },
  toggle = { mode = 'n', desc = 'toggle automatic suggestions (lloom.inline.automatic)' },
  inline_accept = { mode = 'i', inline = 'all', desc = 'accept the ghost text, or weave it' },
  inline_accept_word = { mode = 'i', inline = 'word', desc = "accept the ghost text's next word" },
  inline_accept_line = { mode = 'i', inline = 'line', desc = "accept the ghost text's line" },
  inline_next = { mode = 'i', cycle = 1, desc = 'show the next beam as ghost text' },
  inline_prev = { mode = 'i', cycle = -1, desc = 'show the previous beam as ghost text' },
}

local GROUPS = { backend = true, weave = true, story = true, inline = true }

-- Nvim 0.11 gave vim.validate positional arguments and deprecated the table form.
local positional_validate = vim.fn.has('nvim-0.11') == 1

--- vim.validate on every Nvim: `validator` is a type name or a predicate, in which
--- case `message` says what was expected.
function M.validate(name, value, validator, optional, message)
  if positional_validate then
    vim.validate(name, value, validator, optional, message)
  elseif type(validator) == 'function' then
    local check = function(v)
      return (optional and v == nil) or validator(v)
    end
    vim.validate({ [name] = { value, check, message } })
  else
    vim.validate({ [name] = { value, validator, optional } })
  end
end

local function is_list(value)
  if type(value) ~= 'table' then
    return false
  end
  local count = 0
  for _ in pairs(value) do
    count = count + 1
  end
  return count == #value
end

local function is_string_list(value, nonempty)
  if not is_list(value) or (nonempty and #value == 0) then
    return false
  end
  for _, item in ipairs(value) do
    if type(item) ~= 'string' or item == '' then
      return false
    end
  end
  return true
end

M.schema = schema
M.by_key = {}
for _, entry in ipairs(schema) do
  M.by_key[entry.key] = entry
end

local function number_text(n)
  return (string.format('%.10g', n))
end

--- "an integer from 1 to 512", "one of 'chain', 'token'", ...
function M.describe(entry)
  if entry.enum then
    return 'one of ' .. table.concat(vim.tbl_map(vim.inspect, entry.enum), ', ')
  end
  local what = ({
    integer = 'an integer',
    number = 'a number',
    boolean = 'true or false',
    string = 'a string',
    array = 'a list of non-empty strings',
  })[entry.type]
  if entry.minimum and entry.maximum then
    what = what .. ' from ' .. number_text(entry.minimum) .. ' to ' .. number_text(entry.maximum)
  end
  return what
end

local function in_range(entry, n)
  return (not entry.minimum or n >= entry.minimum) and (not entry.maximum or n <= entry.maximum)
end

--- Whether `value` is allowed for the setting `entry` (the server checks the same).
function M.accepts(entry, value)
  local kind = entry.type
  if kind == 'boolean' then
    return type(value) == 'boolean'
  elseif kind == 'integer' then
    return type(value) == 'number' and value == math.floor(value) and in_range(entry, value)
  elseif kind == 'number' then
    return type(value) == 'number' and value == value and in_range(entry, value)
  elseif kind == 'array' then
    return is_list(value) and (#value == 0 or is_string_list(value, true))
  elseif entry.enum then
    return vim.tbl_contains(entry.enum, value)
  end
  return type(value) == 'string'
end

--- Settings in the one shape both workspace/configuration and the server want:
--- `{ lloom = { group = { key = value } } }`.  Also takes the section itself
--- (`{ weave = {...} }`) and flat keys (`{ ['lloom.weave.maxDepth'] = 2 }`).
--- Empty groups are dropped: the server reads `{}` from Lua as a JSON list.
function M.normalize_settings(raw)
  M.validate('settings', raw, 'table')
  local nested = {}
  for key, value in pairs(raw) do
    local node, parts = nested, vim.split(tostring(key), '.', { plain = true })
    for i = 1, #parts - 1 do
      node[parts[i]] = type(node[parts[i]]) == 'table' and node[parts[i]] or {}
      node = node[parts[i]]
    end
    local leaf = parts[#parts]
    if type(value) == 'table' and not is_list(value) and type(node[leaf]) == 'table' then
      node[leaf] = vim.tbl_deep_extend('force', node[leaf], value)
    else
      node[leaf] = value
    end
  end
  local section = nested.lloom or {}
  M.validate('settings.lloom', section, 'table')
  for group in pairs(GROUPS) do
    if type(nested[group]) == 'table' then
      section[group] = vim.tbl_deep_extend('force', section[group] or {}, nested[group])
    end
  end
  local out = {}
  for group, values in pairs(section) do
    if type(values) == 'table' and next(values) == nil then
      values = nil
    end
    out[group] = values
  end
  return { lloom = next(out) and out or vim.empty_dict() }
end

--- Check normalized settings against the schema.  A bad value is an error naming the
--- key; an unknown key only a warning, since a newer server may know it.
function M.check_settings(settings)
  for group, values in pairs(settings.lloom) do
    local prefix = 'lloom.' .. tostring(group)
    M.validate('settings.' .. prefix, values, 'table')
    for key, value in pairs(values) do
      local flat = prefix .. '.' .. tostring(key)
      local entry = M.by_key[flat]
      if entry then
        M.validate('settings.' .. flat, value, function(v)
          return M.accepts(entry, v)
        end, false, M.describe(entry))
      else
        vim.notify(
          'LLooM: unknown setting ' .. flat .. ' (see :help lloom-settings)',
          vim.log.levels.WARN
        )
      end
    end
  end
  return settings
end

--- `base` with `changes` on top: groups merge key by key; a value (lists included)
--- replaces the old one.
function M.merge_settings(base, changes)
  local out = vim.deepcopy(base)
  for group, values in pairs(changes.lloom) do
    out.lloom[group] = vim.tbl_extend('force', out.lloom[group] or {}, values)
  end
  if next(out.lloom) == nil then
    out.lloom = vim.empty_dict()
  end
  return out
end

--- The options in force: defaults, with what the user gave on top, all validated.
function M.resolve(opts)
  M.validate('opts', opts, 'table', true)
  opts = opts or {}
  for name in pairs(opts) do
    if M.defaults[name] == nil then
      local known = vim.tbl_keys(M.defaults)
      table.sort(known)
      local message = 'lloom.setup: unknown option %q (options: %s)'
      error(message:format(tostring(name), table.concat(known, ', ')), 2)
    end
  end
  M.validate('cmd', opts.cmd, function(v)
    return is_string_list(v, true)
  end, true, 'a non-empty list of strings, e.g. { "lloom-lsp" }')
  M.validate('filetypes', opts.filetypes, function(v)
    return is_string_list(v, true)
  end, true, 'a non-empty list of filetypes')
  M.validate('root_markers', opts.root_markers, function(v)
    return is_string_list(v, false)
  end, true, 'a list of file names')
  M.validate('settings', opts.settings, 'table', true)
  M.validate('keymaps', opts.keymaps, function(v)
    if type(v) ~= 'table' then
      return false
    end
    for action, lhs in pairs(v) do
      if not M.keymap_actions[action] or (lhs ~= false and type(lhs) ~= 'string') then
        return false
      end
    end
    return true
  end, true, 'a table of { <action> = "<keys>" } (see :help lloom-keymaps)')
  M.validate('inline_completion', opts.inline_completion, 'boolean', true)
  M.validate('on_attach', opts.on_attach, 'function', true)
  M.validate('picker', opts.picker, function(v)
    return v == 'auto' or v == 'float' or v == 'select'
  end, true, "one of 'auto', 'float', 'select'")
  M.validate('hover_key', opts.hover_key, function(v)
    return v == false or (type(v) == 'string' and v ~= '')
  end, true, 'a key (e.g. "K"), or false')

  local options = vim.deepcopy(M.defaults)
  for name, value in pairs(opts) do
    options[name] = vim.deepcopy(value)
  end
  options.settings = M.check_settings(M.normalize_settings(options.settings))
  options.cmd_from = opts.cmd and 'setup()' or nil -- for :checkhealth
  return options
end

--- The value in force for `key` (`lloom.group.leaf`) in nested `settings`: the one set,
--- else the server's default.  Also returns whether it was set.
function M.value(settings, key)
  local section = (settings or {}).lloom or {}
  local _, group, leaf = unpack(vim.split(key, '.', { plain = true }))
  local given = nil
  if type(section[group]) == 'table' then
    given = section[group][leaf]
  end
  if given == nil then
    return M.by_key[key].default, false
  end
  return given, true
end

--- Every setting with the value in force (the server's default where none is set),
--- in the schema's order: `{ key, value, set }`.
function M.in_force(settings)
  local rows = {}
  for _, entry in ipairs(schema) do
    local value, set = M.value(settings, entry.key)
    table.insert(rows, { key = entry.key, value = value, set = set })
  end
  return rows
end

return M
