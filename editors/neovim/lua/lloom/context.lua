--- :LLooMContext — what the next weave at the cursor would send, from the server's
--- `lloom.showContext`: a few lines about it (backend, token count, memory, author's
--- note, window), a rule, then the prompt exactly as sent.  It is shown read-only in one
--- scratch buffer below the story; a rerun refreshes that buffer in its window.
local actions = require('lloom.actions')
local client_mod = require('lloom.client')
local position = require('lloom.position')

local api = vim.api

local M = {}

M.FILETYPE = 'lloom-context'
M.NAME = 'LLooM context'

--- The line after which the server's text is the prompt (render_context's PROMPT_RULE).
local RULE = '──── the prompt, exactly as sent ────'

local namespace = api.nvim_create_namespace('lloom_context')

--- The context buffer, while it exists; bufhidden=wipe ends it when its window closes.
M.bufnr = nil

local function create_buffer()
  local bufnr = api.nvim_create_buf(false, true)
  local bo = vim.bo[bufnr]
  bo.buftype, bo.bufhidden, bo.swapfile = 'nofile', 'wipe', false
  pcall(api.nvim_buf_set_name, bufnr, M.NAME)
  bo.filetype = M.FILETYPE
  vim.cmd('highlight default link LLooMContextHeader Comment')
  vim.keymap.set('n', 'q', function()
    M.close()
  end, { buffer = bufnr, nowait = true, desc = 'LLooM context: close' })
  api.nvim_create_autocmd('BufWipeout', {
    buffer = bufnr,
    once = true,
    callback = function()
      if M.bufnr == bufnr then
        M.bufnr = nil
      end
    end,
  })
  M.bufnr = bufnr
  return bufnr
end

--- Close the context window (`q` in it) and wipe its buffer.
function M.close()
  local bufnr = M.bufnr
  if not bufnr or not api.nvim_buf_is_valid(bufnr) then
    return
  end
  local win = vim.fn.bufwinid(bufnr)
  if win ~= -1 and #api.nvim_list_wins() > 1 then
    pcall(api.nvim_win_close, win, true)
  end
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_delete(bufnr, { force = true })
  end
end

--- The window showing `bufnr`, split below the current one when none does yet.
local function show_window(bufnr)
  local win = vim.fn.bufwinid(bufnr)
  if win ~= -1 then
    return win
  end
  vim.cmd('belowright sbuffer ' .. bufnr)
  win = api.nvim_get_current_win()
  -- :setlocal, not vim.wo: on 0.7 vim.wo sets the global value too.
  vim.cmd('setlocal wrap linebreak nolist nospell nonumber norelativenumber')
  return win
end

--- Put `text` in the buffer, read-only, the lines before the prompt dimmed.
local function fill(bufnr, text)
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_option(bufnr, 'modifiable', true)
  api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  api.nvim_buf_set_option(bufnr, 'modifiable', false)
  api.nvim_buf_set_option(bufnr, 'modified', false)
  api.nvim_buf_clear_namespace(bufnr, namespace, 0, -1)
  for i, line in ipairs(lines) do
    api.nvim_buf_add_highlight(bufnr, namespace, 'LLooMContextHeader', i - 1, 0, -1)
    if line == RULE then
      break
    end
  end
end

--- :LLooMContext — ask the server what the next weave at the cursor would send and show
--- it.  `done(err, result, bufnr)` runs with the server's answer and the context buffer
--- (nil when it failed).
function M.show(done)
  local function finish(err, result, bufnr)
    if done then
      done(err, result, bufnr)
    end
  end
  local client, story_buf = actions.ready_client()
  if not client then
    return finish('no ready lloom-lsp client')
  end
  local pos = position.cursor(client.offset_encoding or 'utf-16')
  local arguments = { vim.uri_from_bufnr(story_buf), pos }
  client_mod.execute(client, 'lloom.showContext', arguments, function(err, result)
    if err or type(result) ~= 'table' or type(result.text) ~= 'string' then
      local message = type(err) == 'table' and err.message or err or 'no answer'
      actions.notify('context failed: ' .. tostring(message), vim.log.levels.ERROR)
      return finish(err or 'no answer', result)
    end
    local bufnr = M.bufnr and api.nvim_buf_is_valid(M.bufnr) and M.bufnr or create_buffer()
    fill(bufnr, result.text)
    local win = show_window(bufnr)
    api.nvim_set_current_win(win)
    api.nvim_win_set_cursor(win, { 1, 0 })
    finish(nil, result, bufnr)
  end, story_buf)
end

return M
