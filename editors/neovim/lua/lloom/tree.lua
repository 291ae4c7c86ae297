--- A weave's token tree (the json of the server's `lloom.tree`) as lines of text: one
--- line per node, in the tree's own order (a node, then its children's subtrees), each
--- indented by its depth and showing a bar of the token's probability, the probability,
--- the token, and on a leaf where its beam ended.  Also the fold level of every line, so
--- each branch (a subtree whose parent splits) folds on its own.  Pure: no Nvim state.
local beams = require('lloom.beams')

local M = {}

--- Cells of the probability bar.
M.BAR_WIDTH = 8

--- How many characters of the story's end the root line shows.
M.STORY_TAIL = 40

--- A token as a JSON string, quotes included: its spaces and newlines stay visible.
function M.token_text(text)
  return vim.fn.json_encode(text or '')
end

--- A node's finish reason, or nil ("stop", "depth", "end", "cut"; null in JSON).
function M.finish(node)
  local finish = node.finish
  if type(finish) == 'string' and finish ~= '' then
    return finish
  end
  return nil
end

--- Whether `node` has children.
function M.inner(node)
  return type(node.children) == 'table' and node.children[1] ~= nil
end

local function story_tail(prompt)
  prompt = beams.visible(prompt or '')
  local chars = vim.fn.strchars(prompt)
  if chars > M.STORY_TAIL then
    prompt = '…' .. vim.fn.strcharpart(prompt, chars - M.STORY_TAIL)
  end
  return M.token_text(prompt)
end

--- The root's line: the end of the story woven from, and the speed line.
function M.root_line(tree, speed_line)
  local line = 'story ' .. story_tail(tree.prompt)
  if type(speed_line) == 'string' and speed_line ~= '' then
    line = line .. '  ' .. speed_line
  end
  return line
end

--- A node's line: indent, bar, probability, token, `[finish]` where a beam ends.
function M.node_line(node, depth)
  local prob = tonumber(node.prob) or 0
  local finish = M.finish(node)
  return string.rep('  ', depth)
    .. beams.bar(prob, M.BAR_WIDTH)
    .. string.format(' %4s  ', beams.percent(prob))
    .. M.token_text(node.text)
    .. (finish and ('  [' .. finish .. ']') or '')
end

--- The tree as `{ lines, nodes, depths, folds }`, all indexed by line (1-based): the
--- text, the json node, its depth (the root's is 0), and its 'foldexpr' level.  A fold
--- starts at every child of a node with two or more children and covers its subtree,
--- so `zc` on any line closes the branch it is on, and a chain of single tokens is one
--- fold, not one per token.
function M.layout(tree, speed_line)
  local out = { lines = {}, nodes = {}, depths = {}, folds = {} }
  local function add(node, depth, level, starts)
    table.insert(
      out.lines,
      depth == 0 and M.root_line(tree, speed_line) or M.node_line(node, depth)
    )
    table.insert(out.nodes, node)
    table.insert(out.depths, depth)
    table.insert(out.folds, starts and ('>' .. level) or level)
    local children = M.inner(node) and node.children or {}
    local splits = #children > 1
    for _, child in ipairs(children) do
      add(child, depth + 1, splits and level + 1 or level, splits)
    end
  end
  add(tree.root, 0, 0, false)
  return out
end

return M
