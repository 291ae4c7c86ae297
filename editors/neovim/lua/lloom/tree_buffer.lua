--- :LLooMTree — the weave at the cursor as its token tree, in a scratch buffer beside the
--- story: one line per phrase (lloom.tree lays them out), folded by branch, the keys
--- below.  <CR> on a
--- leaf inserts its beam into the story through `lloom.accept`, at the place and
--- document version the tree was woven for; <CR> on an inner node weaves on from it
--- (`lloom.tree` with `after` = the node's text) and shows that tree in its place; `s`
--- steps [count] (default 4) tokens on from a node (`after` and `depth`).  A tree
--- loaded from its file (:LLooMLoadTree, lloom.tree_file) is a view with `loaded`, whose
--- place is checked against the story before anything is inserted or woven there.
local actions = require('lloom.actions')
local client_mod = require('lloom.client')
local layout = require('lloom.tree')
local position = require('lloom.position')

local api = vim.api

local M = {}

--- JSON-RPC's RequestCancelled: a newer weave (or :LLooMCancel) stopped this one.
local REQUEST_CANCELLED = -32800

local FOLDEXPR = 'get(b:lloom_tree_folds,v:lnum-1,0)'

--- The tree window's statusline, short enough for half an 80-column screen: the keys
--- are the buffer's last lines.
M.HELP = 'LLooM tree  (keys below; q closes)'

--- How many tokens `s` steps on without a count.
M.STEP = 4

--- Tree buffer -> its view: `{ bufnr, win, client_id, at, version, after, depth, tree,
--- layout, history, ticket, loaded }`; `at` is where the story was woven (as in
--- lloom.actions), `history` the `{ after, depth }` of the trees <BS> goes back to.
M.views = {}

local progress_count = 0

--- Send `lloom.tree` (json) for `at` with `options`; `done(result)` runs with a result
--- that has a tree.  Progress and the echo are :LLooMAccept's.
local function request_tree(client, at, options, done)
  progress_count = progress_count + 1
  local params = {
    command = 'lloom.tree',
    arguments = { at.uri, at.pos, vim.tbl_extend('force', options or {}, { format = 'json' }) },
    workDoneToken = 'lloom-tree-' .. progress_count,
  }
  api.nvim_echo({ { 'LLooM: weaving…' } }, false, {})
  client_mod.request(client, 'workspace/executeCommand', params, function(err, result)
    local stopped = type(result) == 'table' and result.cancelled
    if (err and err.code == REQUEST_CANCELLED) or stopped then
      api.nvim_echo({ { 'LLooM: weave cancelled' } }, false, {})
    elseif err or type(result) ~= 'table' then
      actions.notify('tree failed: ' .. tostring(err and err.message or err), vim.log.levels.ERROR)
    elseif type(result.tree) ~= 'table' or type(result.tree.root) ~= 'table' then
      local why = result.error and (': ' .. tostring(result.error)) or ''
      actions.notify('no tree here' .. why, vim.log.levels.WARN)
    else
      if type(result.speedLine) == 'string' and result.speedLine ~= '' then
        client_mod.state.last_weave[client.id] = result.speedLine
        api.nvim_echo({ { 'LLooM: ' .. result.speedLine } }, false, {})
      end
      done(result)
    end
  end, at.bufnr)
end

local function define_highlights()
  for group, target in pairs({
    LLooMTreeStory = 'Title',
    LLooMTreeBar = 'Special',
    LLooMTreeProb = 'Number',
    LLooMTreeFinish = 'Comment',
    LLooMTreeKeys = 'Comment',
  }) do
    vim.cmd(string.format('highlight default link %s %s', group, target))
  end
end

local function syntax(bufnr)
  api.nvim_buf_call(bufnr, function()
    vim.cmd([[
      syntax match LLooMTreeStory /\%1lstory/
      syntax match LLooMTreeBar /[█▏▎▍▌▋▊▉·]\{8}/
      syntax match LLooMTreeProb /\d\+\%(\.\d\+\)\?%/
      syntax match LLooMTreeFinish /  \[\l\+\]$/
      syntax match LLooMTreeKeys /^\%(<CR>\|a insert\|\[N\]s\|<BS>\).*$/
    ]])
  end)
end

--- A new scratch buffer in a split to the right of the story's window.
local function open_window(view, story_win)
  local bufnr = api.nvim_create_buf(false, true)
  local bo = vim.bo[bufnr]
  bo.buftype, bo.bufhidden, bo.swapfile = 'nofile', 'wipe', false
  bo.filetype = 'lloomtree'
  pcall(api.nvim_buf_set_name, bufnr, 'LLooM tree ' .. bufnr)
  define_highlights()
  syntax(bufnr)
  local win
  api.nvim_win_call(story_win, function()
    vim.cmd('rightbelow vertical sbuffer ' .. bufnr)
    win = api.nvim_get_current_win()
    -- :setlocal, not vim.wo: on 0.7 vim.wo sets the global value too, which the next
    -- window opened would take.
    vim.cmd('setlocal foldmethod=expr foldexpr=' .. FOLDEXPR .. ' foldlevel=99 foldenable')
    -- a long phrase wraps under its own indent, not off a narrow split
    vim.cmd('setlocal wrap linebreak breakindent breakindentopt=shift:2')
    vim.cmd('setlocal nonumber norelativenumber nolist nospell cursorline')
    vim.cmd('setlocal statusline=' .. vim.fn.escape(M.HELP, ' \\|"'))
  end)
  view.bufnr, view.win = bufnr, win
  M.views[bufnr] = view
  api.nvim_create_autocmd('BufWipeout', {
    buffer = bufnr,
    once = true,
    callback = function()
      M.views[bufnr] = nil
    end,
  })
  local function map(lhs, run, desc)
    vim.keymap.set('n', lhs, function()
      run(M.views[bufnr])
    end, { buffer = bufnr, desc = 'LLooM tree: ' .. desc, nowait = true })
  end
  map('<CR>', M.choose, 'insert a leaf, or weave on from an inner node')
  map('a', M.accept, 'insert the beam up to this node')
  map('w', M.weave_from, 'weave on from this node')
  map('s', function(view)
    M.step(view, vim.v.count > 0 and vim.v.count or nil)
  end, 'weave [count] (default 4) more tokens from this node')
  map('<BS>', M.back, 'back to the tree before the last weave from a node')
  map('r', M.weave_again, 'weave this tree again, anew')
  map('q', M.close, 'close')
  api.nvim_set_current_win(win)
end

--- Show `result` (a lloom.tree json answer) in the view's buffer.
local function show(view, result)
  if not api.nvim_buf_is_valid(view.bufnr) then
    return
  end
  view.version, view.after, view.tree = result.version, result.after or '', result.tree
  local speed = type(result.speedLine) == 'string' and result.speedLine:gsub('\n', ' ') or nil
  view.layout = layout.layout(result.tree, speed)
  api.nvim_buf_set_var(view.bufnr, 'lloom_tree_folds', view.layout.folds)
  vim.bo[view.bufnr].modifiable = true
  api.nvim_buf_set_lines(view.bufnr, 0, -1, false, view.layout.lines)
  vim.bo[view.bufnr].modifiable = false
  if api.nvim_win_is_valid(view.win) and api.nvim_win_get_buf(view.win) == view.bufnr then
    api.nvim_win_call(view.win, function()
      vim.cmd('normal! zx')
      api.nvim_win_set_cursor(view.win, { math.min(2, #view.layout.lines), 0 })
    end)
  end
end

--- The client of a view, running; or nil, after telling why.
local function view_client(view)
  local client = view and vim.lsp.get_client_by_id(view.client_id)
  if not client_mod.is_running(client) then
    actions.notify('the lloom-lsp client of this tree has stopped', vim.log.levels.WARN)
    return nil
  end
  return client
end

--- For a loaded tree, whether the story still reads as it did where it was saved (the
--- version to accept at, from now); a live tree's own version.  nil after telling why.
local function version_now(view)
  if not view.loaded then
    return view.version, true
  end
  local version, why = require('lloom.tree_file').version_now(view)
  if version == nil then
    actions.notify(why, vim.log.levels.WARN)
  end
  return version, version ~= nil
end

--- Weave the view's tree at its place with `options` and show it; `shown()` after.
local function reweave(view, options, shown)
  local client = view_client(view)
  if not client or not select(2, version_now(view)) then
    return
  end
  view.ticket = view.ticket + 1
  local ticket = view.ticket
  request_tree(client, view.at, options, function(result)
    if M.views[view.bufnr] == view and view.ticket == ticket then
      if shown then
        shown()
      end
      view.loaded = nil -- woven now: a live tree, for the version it was woven at
      view.depth = options.depth
      show(view, result)
    end
  end)
end

local function node_here(view)
  if not view or not view.layout or api.nvim_get_current_buf() ~= view.bufnr then
    return nil
  end
  return view.layout.nodes[api.nvim_win_get_cursor(0)[1]]
end

--- The view of a story buffer whose tree window is still open.
local function view_of_story(bufnr)
  for _, view in pairs(M.views) do
    if view.at.bufnr == bufnr and api.nvim_win_is_valid(view.win) then
      return view
    end
  end
end

--- :LLooMTree — weave at the cursor and show the tree beside the story; in a tree
--- buffer, weave its tree again.  `done(view)` runs once the tree is shown; `options`
--- are lloom.tree's (:LLooMTree! weaves anew: `fresh`).
function M.open(done, options)
  if M.views[api.nvim_get_current_buf()] then
    return M.weave_again(M.views[api.nvim_get_current_buf()], done)
  end
  local client, bufnr = actions.ready_client()
  if not client then
    return
  end
  local pos, row, col = position.cursor(client.offset_encoding or 'utf-16')
  local at = { bufnr = bufnr, uri = vim.uri_from_bufnr(bufnr), pos = pos, row = row, col = col }
  local story_win = api.nvim_get_current_win()
  request_tree(client, at, options, function(result)
    local view = M.present(client, at, story_win, result)
    if done then
      done(view)
    end
  end)
end

--- Show `result` (a lloom.tree json answer, or a loaded one with `loaded`) for the story
--- place `at`: in the story's tree window, else a new one beside `story_win`.  Returns
--- the view.
function M.present(client, at, story_win, result, loaded)
  local view = view_of_story(at.bufnr)
  if view then
    view.ticket = view.ticket + 1 -- an answer still coming for the old place is stale
    api.nvim_set_current_win(view.win)
  else
    view = { ticket = 0 }
    if not api.nvim_win_is_valid(story_win) then
      story_win = api.nvim_get_current_win()
    end
    open_window(view, story_win)
  end
  view.client_id, view.at, view.history, view.depth = client.id, at, {}, nil
  show(view, result)
  view.loaded = loaded
  if loaded then
    view.version = nil -- known only once the story is checked
  end
  return view
end

--- Insert the beam that ends at the node under the cursor into the story (lloom.accept,
--- refused if the story changed since the weave), close the tree and put the cursor on
--- the beam's last character.
function M.accept(view)
  local node = node_here(view)
  if not node then
    return
  end
  local text = node.insertText or ''
  if text == '' then
    actions.notify('nothing to insert at the story itself', vim.log.levels.WARN)
    return
  end
  local client = view_client(view)
  local version, ok = version_now(view)
  if not client or not ok then
    return
  end
  local at = view.at
  local args = { at.uri, version, at.pos, text }
  client_mod.execute(client, 'lloom.accept', args, function(err, answer)
    if err or type(answer) ~= 'table' then
      actions.notify('accept failed: ' .. tostring(err and err.message), vim.log.levels.ERROR)
    elseif not answer.applied then
      actions.notify('not inserted: ' .. tostring(answer.reason), vim.log.levels.WARN)
    else
      M.close(view)
      local win = vim.fn.bufwinid(at.bufnr)
      if win ~= -1 then
        api.nvim_set_current_win(win)
        position.after_insert(at.row, at.col, text, false)
      end
    end
  end, at.bufnr)
end

--- Weave on from the node under the cursor, beams `depth` tokens long (nil: the
--- settings' maxDepth), and show that tree.  <BS> goes back.
local function weave_on(view, depth)
  local node = node_here(view)
  if not node then
    return
  end
  local previous = { after = view.after, depth = view.depth }
  reweave(view, { after = node.insertText or '', depth = depth }, function()
    table.insert(view.history, previous)
  end)
end

--- Weave on from the node under the cursor: the story plus the node's text, and show
--- that tree (its leaves then insert the node's text too).  <BS> goes back.
function M.weave_from(view)
  weave_on(view, nil)
end

--- `s`: weave `count` (default M.STEP) more tokens from the node under the cursor (the
--- story plus the node's text, beams that many tokens long), and show that tree.
function M.step(view, count)
  weave_on(view, count or M.STEP)
end

--- <CR>: insert a leaf, weave on from an inner node.
function M.choose(view)
  local node = node_here(view)
  if node and layout.inner(node) then
    return M.weave_from(view)
  end
  return M.accept(view)
end

--- Back to the tree shown before the last weave from a node.
function M.back(view)
  if not view or not view.history[1] then
    actions.notify('no earlier tree', vim.log.levels.INFO)
    return
  end
  local previous = view.history[#view.history]
  reweave(view, { after = previous.after, depth = previous.depth }, function()
    table.remove(view.history)
  end)
end

--- Weave the tree shown again, anew (`fresh`); `done(view)` runs once it is shown.
function M.weave_again(view, done)
  if view then
    reweave(view, { after = view.after, depth = view.depth, fresh = true }, done and function()
      vim.schedule(function()
        done(view)
      end)
    end)
  end
end

--- Close the tree (its buffer is wiped with its window).
function M.close(view)
  if not view or not api.nvim_buf_is_valid(view.bufnr) then
    return
  end
  if api.nvim_win_is_valid(view.win) and #api.nvim_list_wins() > 1 then
    pcall(api.nvim_win_close, view.win, true)
  end
  if api.nvim_buf_is_valid(view.bufnr) then
    api.nvim_buf_delete(view.bufnr, { force = true })
  end
end

--- The tree at the cursor, as `lloom.tree` returns it: calls `callback(err, result)`
--- with `{ format, version, speedLine, after, tree | text, error? }`.  {options} are
--- lloom.weave's (`fresh`, `deeper`, `after`) plus `format`.
function M.tree_result(callback, options)
  actions.execute_at_cursor('lloom.tree', function(err, result)
    callback(err, result)
  end, options)
end

return M
