-- lloom.nvim's commands.  Starting the server is require('lloom').setup()'s job (or
-- vim.lsp.enable('lloom') on Nvim 0.11+); see :help lloom.
if vim.g.loaded_lloom or vim.fn.has('nvim-0.7') == 0 then
  return
end
vim.g.loaded_lloom = true

local function run(action)
  return function(args)
    require('lloom')[action](args.count > 0 and args.count or nil)
  end
end

local command = vim.api.nvim_create_user_command
command('LLooMWeave', run('weave'), { desc = 'LLooM: weave at the cursor and pick a beam' })
command('LLooMAccept', run('accept'), { desc = 'LLooM: insert the best beam at the cursor' })
command('LLooMNext', run('next_beam'), {
  count = true,
  desc = 'LLooM: replace the beam just inserted with the next one',
})
command('LLooMStep', function(args)
  require('lloom').step(args.count > 0 and args.count or nil)
end, { count = true, desc = 'LLooM: weave [count] (default 4) tokens at the cursor, pick a beam' })
command('LLooMTree', function(args)
  require('lloom').tree(nil, args.bang and { fresh = true } or nil)
end, { bang = true, desc = "LLooM: show the weave's token tree beside the story" })
command('LLooMCancel', run('cancel'), { desc = 'LLooM: cancel the weaves in progress' })
command('LLooMToggle', run('toggle'), { desc = 'LLooM: toggle automatic suggestions' })
command('LLooMContext', function()
  require('lloom').show_context()
end, { desc = 'LLooM: show what the next weave at the cursor would send' })
command('LLooMShading', run('shading'), {
  desc = 'LLooM: toggle shading woven text by probability',
})
command('LLooMSaveTree', function(args)
  require('lloom').save_tree(nil, args.args ~= '' and args.args or nil)
end, {
  nargs = '?',
  complete = function()
    return { 'lloom', 'loomsidian' }
  end,
  desc = 'LLooM: save the tree of the weave at the cursor beside the file',
})
command('LLooMLoadTree', run('load_tree'), {
  desc = 'LLooM: show the tree saved beside the file',
})
command('LLooMInfo', run('info'), {
  desc = 'LLooM: client status, settings in force, last speed line',
})

-- Clients from vim.lsp.enable('lloom') get what setup()'s get in on_attach: the
-- statusline's lloom/status, the shading's lloom/spans, code actions that weave
-- where :LLooMWeave does, and beams inserted without a "Workspace edit" message.
vim.lsp.handlers['lloom/status'] = function(...)
  return require('lloom.client').on_status(...)
end
vim.lsp.handlers['lloom/spans'] = function(...)
  return require('lloom.shading').on_spans(...)
end
if vim.fn.has('nvim-0.8') == 1 then
  vim.api.nvim_create_autocmd('LspAttach', {
    group = vim.api.nvim_create_augroup('lloom.attach', { clear = true }),
    desc = 'LLooM: prepare a lloom-lsp client',
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == 'lloom' then
        require('lloom.client').place_code_actions(client)
        require('lloom.client').quiet_edits(client)
      end
    end,
  })
end
