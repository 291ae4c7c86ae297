--- :checkhealth lloom — is the server installed and answering, can it reach a backend
--- that gives token probabilities, and which Nvim features are there.
---
--- Nvim 0.10+ reports through vim.health.start/ok/...; 0.7 to 0.9 through
--- report_start/report_ok/... (of require('health') on 0.7).
local client_mod = require('lloom.client')
local config = require('lloom.config')

local M = {}

--- Seconds the backend has to answer the check.
local HEALTH_TIMEOUT_S = 5

local function usable(health)
  return type(health) == 'table' and (health.start or health.report_start) ~= nil
end

local function reporter()
  local health = vim.health
  for _, name in ipairs({ 'vim.health', 'health' }) do
    if usable(health) then
      break
    end
    local ok, module = pcall(require, name)
    health = ok and module or nil
  end
  return {
    start = health.start or health.report_start,
    ok = health.ok or health.report_ok,
    info = health.info or health.report_info,
    warn = health.warn or health.report_warn,
    error = health.error or health.report_error,
  }
end

--- Where the default command comes from, in words.
local function default_source()
  if config.repository_server() then
    return "the default: this checkout's .venv"
  end
  return 'the default: lloom-lsp on $PATH'
end

--- The command and settings in force: setup()'s, or vim.lsp.config('lloom')'s, or the
--- defaults; and where the command came from (setup() without `cmd` uses the default).
local function server_config()
  local options = client_mod.state.options
  if options then
    local source = options.cmd_from or (default_source() .. ', setup() gave no cmd')
    return options.cmd, client_mod.state.settings, source
  end
  if vim.lsp.config then
    local ok, lsp_config = pcall(function()
      return vim.lsp.config.lloom
    end)
    if ok and type(lsp_config) == 'table' and type(lsp_config.cmd) == 'table' then
      local settings = config.normalize_settings(lsp_config.settings or {})
      local source = "vim.lsp.config('lloom')"
      if vim.deep_equal(lsp_config.cmd, config.server_cmd()) then
        source = default_source() .. ', as lsp/lloom.lua gives it'
      end
      return lsp_config.cmd, settings, source
    end
  end
  return config.defaults.cmd, config.normalize_settings({}), default_source()
end

local function run(cmd)
  local output = vim.fn.system(cmd)
  return vim.v.shell_error, vim.trim(output)
end

--- `lloom-lsp check` flags for the backend settings in force.  modelPath is left out:
--- a health check must not start a llama-server.
local function backend_flags(settings)
  local backend = settings.lloom.backend or {}
  local flags = { '--timeout-seconds', tostring(HEALTH_TIMEOUT_S) }
  for key, value in pairs(backend) do
    if key ~= 'modelPath' and key ~= 'serverCommand' and key ~= 'timeoutSeconds' then
      local flag = key == 'type' and '--backend'
        or '--' .. key:gsub('%u', function(c)
          return '-' .. c:lower()
        end)
      vim.list_extend(flags, { flag, tostring(value) })
    end
  end
  return flags, backend.url or config.by_key['lloom.backend.url'].default
end

local function check_nvim(report)
  report.start('lloom: Nvim')
  local v = vim.version()
  local version = string.format('%d.%d.%d', v.major, v.minor, v.patch)
  if vim.fn.has('nvim-0.7') == 1 then
    report.ok('Nvim ' .. version)
  else
    report.error('Nvim ' .. version .. ' is too old: lloom.nvim needs 0.7 or newer')
  end
  if vim.lsp.start then
    report.ok('clients start with vim.lsp.start (0.8+)')
  else
    report.ok('clients start with vim.lsp.start_client + buf_attach_client (0.7)')
  end
  if vim.lsp.enable then
    report.ok("vim.lsp.enable('lloom') works without setup() (0.11+)")
  else
    report.info("vim.lsp.enable('lloom') needs Nvim 0.11; use require('lloom').setup()")
  end
  if client_mod.inline_completion() then
    report.ok('inline completion (ghost text) available (0.12+): map keymaps.inline_accept')
  else
    report.info(
      'no inline completion before Nvim 0.12: use :LLooMWeave, :LLooMAccept or completion'
    )
  end
  if client_mod.state.options then
    report.ok('setup() done, filetypes: ' .. table.concat(client_mod.state.options.filetypes, ', '))
  elseif vim.lsp.enable then
    report.info("setup() not called: fine if you use vim.lsp.enable('lloom')")
  else
    report.warn('setup() not called', { "Add require('lloom').setup() to your init.lua" })
  end
end

local function check_server(report)
  report.start('lloom: server')
  local cmd, settings, source = server_config()
  if vim.fn.executable(cmd[1]) ~= 1 then
    report.error(string.format('%s is not executable (cmd from %s)', cmd[1], source), {
      'Install it in the lloom-lsp checkout, where the plugin finds it by itself: '
        .. 'python3 -m venv .venv && .venv/bin/pip install . (the build step of :help lloom-install)',
      'or point `cmd` in setup() at it, e.g. { "/path/to/venv/bin/lloom-lsp" }',
    })
    return
  end
  report.ok(string.format('%s is executable (cmd from %s)', table.concat(cmd, ' '), source))
  if config.repository_server() == cmd[1] then
    report.ok("it is the checkout's own .venv server (the plugin manager's build step)")
  end
  local code, version = run(vim.list_extend(vim.deepcopy(cmd), { '--version' }))
  if code ~= 0 then
    report.error('the server does not start: ' .. version)
    return
  end
  report.ok('the server answers: ' .. version)

  local flags, url = backend_flags(settings)
  if (settings.lloom.backend or {}).modelPath then
    report.info(
      'backend.modelPath is set: lloom-lsp starts its own llama-server when nothing answers'
    )
  end
  local check = vim.list_extend(vim.list_extend(vim.deepcopy(cmd), { 'check', '--json' }), flags)
  local check_code, output = run(check)
  local json = output:match('{.*}')
  local ok, info = pcall(vim.fn.json_decode, json or '')
  if not ok or type(info) ~= 'table' then
    info = {}
  end
  -- `check --json` says what went wrong as one word (error.kind), the message beside it
  local failure = type(info.error) == 'table' and info.error or nil
  local message = failure and failure.message or output
  if check_code == 0 and not failure and next(info) then
    report.ok(
      string.format(
        'backend %s answers (%s%s) with token probabilities',
        info.url or url,
        info.protocol or '?',
        (info.model and info.model ~= '') and (', model ' .. info.model) or ''
      )
    )
  elseif not failure and next(info) then
    report.error(string.format('backend %s cannot weave: it gives no token probabilities', url), {
      'Use llama-server, or an OpenAI-compatible server that returns logprobs',
    })
  elseif failure and failure.kind == 'busy' then
    -- connected, then no answer in time: llama-server evaluating a long story, weaving
    -- for another client, or loading its model answers late, but it is running
    report.warn(
      string.format(
        'backend %s is busy or slow, not down: it took the connection but did not answer '
          .. 'within %s s (%s)',
        url,
        HEALTH_TIMEOUT_S,
        message
      ),
      {
        'It may be weaving, evaluating a long story or loading its model: run '
          .. ':checkhealth lloom again when it is idle',
        'If every request is this slow, raise settings.lloom.backend.timeoutSeconds',
      }
    )
  elseif failure and failure.kind == 'unreachable' then
    local why = 'backend %s does not answer: nothing takes the connection (%s)'
    report.warn(string.format(why, url, message), {
      'Start llama-server (llama-server -m model.gguf --port 8080)',
      'or set settings.lloom.backend.url in setup()',
    })
  elseif failure and failure.kind == 'gateway' then
    local why = 'backend %s: a proxy answers, the server behind it does not (%s)'
    report.warn(string.format(why, url, message), {
      'Is llama-server running behind the proxy, and does the proxy wait long enough?',
    })
  elseif failure and failure.kind == 'auth' then
    report.error(string.format('backend %s refused the API key: %s', url, message), {
      'Set the variable named by settings.lloom.backend.apiKeyEnv where Neovim starts',
    })
  else
    local why = 'backend %s does not answer as llama-server would: %s'
    report.warn(string.format(why, url, message), {
      'Is a proxy in between, or another server on that port?',
      'or set settings.lloom.backend.url in setup()',
    })
  end
end

local function check_clients(report)
  report.start('lloom: clients')
  local clients = client_mod.all()
  if #clients == 0 then
    report.info('no lloom-lsp client running (open a buffer of a configured filetype)')
  end
  for _, c in ipairs(clients) do
    local running = client_mod.is_running(c)
    local line = string.format(
      'client %d: %s, root %s',
      c.id,
      running and 'running' or 'stopped',
      c.config.root_dir or '(none)'
    )
    if running then
      report.ok(line)
    else
      report.warn(line)
    end
  end
end

function M.check()
  local report = reporter()
  check_nvim(report)
  check_server(report)
  check_clients(report)
end

return M
