--- :LLooMSaveTree and :LLooMLoadTree — a story's thread tree kept beside it, in
--- `<file>.lloom.json` (the server's `lloom.saveTree` writes it, `lloom.loadTree` reads
--- it back).  A loaded tree is shown in the tree buffer (lloom.tree_buffer) at the place
--- it was saved for.  Its document version is long gone, so before a leaf is inserted
--- (or a node woven on from) the story is checked instead: the text before the saved
--- place, with the tree's `after`, must still end with the prompt the tree was woven
--- from; then the buffer's current version is the one to accept at.
local actions = require('lloom.actions')
local client_mod = require('lloom.client')
local position = require('lloom.position')

local api = vim.api

local M = {}

--- A server error, verbatim.
local function failed(err, result)
  if type(result) == 'table' and result.error then
    vim.notify(tostring(result.error), vim.log.levels.ERROR)
    return true
  end
  if err or type(result) ~= 'table' then
    local message = type(err) == 'table' and err.message or err
    vim.notify(tostring(message or 'no answer'), vim.log.levels.ERROR)
    return true
  end
  return false
end

--- :LLooMSaveTree — save the tree of the weave at the cursor beside the file, and echo
--- where.  `format`: lloom.saveTree's ("lloom", the default, which :LLooMLoadTree reads;
--- "loomsidian" for other loom tools).  `done(err, result)` runs with the server's answer
--- `{ path, nodes }`.
function M.save(done, format)
  local options = format and { format = format } or nil
  actions.execute_at_cursor('lloom.saveTree', function(err, result)
    if not failed(err, result) then
      local message = string.format('LLooM: %d nodes saved to %s', result.nodes or 0, result.path)
      api.nvim_echo({ { message } }, true, {})
    end
    if done then
      done(err, result)
    end
  end, options)
end

--- The text of `bufnr` before LSP position `pos`; nil when the buffer has no such place.
local function text_before(bufnr, pos, encoding)
  if type(pos) ~= 'table' or pos.line >= api.nvim_buf_line_count(bufnr) then
    return nil
  end
  local lines = api.nvim_buf_get_lines(bufnr, 0, pos.line + 1, false)
  local line = lines[#lines]
  if pos.character > position.units(line, encoding) then
    return nil
  end
  lines[#lines] = line:sub(1, position.byte_col(line, pos.character, encoding))
  return table.concat(lines, '\n')
end

--- The version a loaded tree's view may accept at now: the buffer's, when the story
--- still reads as it did where the tree was saved.  nil and why when it does not.
function M.version_now(view)
  local loaded, at = view.loaded, view.at
  if not api.nvim_buf_is_loaded(at.bufnr) then
    return nil, 'the story of this tree is no longer loaded'
  end
  local client = vim.lsp.get_client_by_id(view.client_id)
  local encoding = client and client.offset_encoding or 'utf-16'
  local before = text_before(at.bufnr, at.pos, encoding)
  local expected = loaded.prompt .. loaded.held
  local story = before and (before .. loaded.after)
  if not story or story:sub(#story - #expected + 1) ~= expected then
    return nil,
      string.format(
        'this tree is stale: the text before line %d, column %d is no longer what it '
          .. 'was woven from (saved %s); weave again with :LLooMTree',
        at.pos.line + 1,
        at.pos.character + 1,
        loaded.saved_at
      )
  end
  at.row, at.col = position.from_lsp(at.bufnr, at.pos, encoding)
  return vim.lsp.util.buf_versions[at.bufnr]
end

--- :LLooMLoadTree — show the tree saved beside the file in the tree buffer.  `done(view)`
--- runs once it is shown; `done(nil, err, result)` when the server refused.
function M.load(done)
  local client, bufnr = actions.ready_client()
  if not client then
    return
  end
  local story_win = api.nvim_get_current_win()
  local uri = vim.uri_from_bufnr(bufnr)
  client_mod.execute(client, 'lloom.loadTree', { uri }, function(err, result)
    if failed(err, result) or type(result.tree) ~= 'table' then
      if done then
        done(nil, err, result)
      end
      return
    end
    local tree = result.tree
    local at = { bufnr = bufnr, uri = uri, pos = result.position, row = 0, col = 0 }
    local speed = type(result.speedLine) == 'string' and result.speedLine or ''
    local saved = tostring(result.savedAt or '?')
    local shown = {
      tree = tree,
      after = result.after or '',
      speedLine = 'saved ' .. saved .. (speed ~= '' and ('  ' .. speed) or ''),
    }
    local view = require('lloom.tree_buffer').present(client, at, story_win, shown, {
      prompt = type(tree.prompt) == 'string' and tree.prompt or '',
      held = type(tree.held) == 'string' and tree.held or '',
      after = result.after or '',
      saved_at = saved,
      path = result.path,
    })
    api.nvim_echo({ { 'LLooM: tree loaded from ' .. tostring(result.path) } }, false, {})
    if done then
      done(view)
    end
  end, bufnr)
end

return M
